// zokio/detail/uring/ops/recv_provided_op.hpp: receive into a buffer of a
// provided_buffer_pool.
//
// Kernel mode: IORING_OP_RECV with IOSQE_BUFFER_SELECT (buffer rings: linux
// 5.19) names the pool's buffer group instead of a buffer; the kernel picks
// a buffer only when data is there and reports its id in the CQE flags
// (IORING_CQE_F_BUFFER). A CQE that carries a buffer but no data (end of
// stream, an error, a cancellation that raced with the data) gives it back.
//
// Fallback mode: the operation takes a free buffer of the pool when it is
// prepared and receives into it with a plain IORING_OP_RECV; no free buffer
// completes it with ENOBUFS (prepared as a NOP).
//
// The operation is routed (socket_op::route_) to the pool's home runner, so
// it is always prepared on the thread that owns the pool's ring. Its
// completion may run on any thread of the context: it only reads the pool's
// constant fields and gives buffers back through give_back (any thread).
#ifndef ZOKIO_DETAIL_URING_OPS_RECV_PROVIDED_OP_HPP
#define ZOKIO_DETAIL_URING_OPS_RECV_PROVIDED_OP_HPP

#include <zokio/detail/uring/net_features.hpp>
#include <zokio/detail/uring/socket_handler.hpp>
#include <zokio/detail/uring/socket_op.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include <boost/asio/error.hpp>

namespace zokio {
namespace detail {

class recv_provided_op_base : public socket_op
{
protected:
  recv_provided_op_base(func_type complete, provided_buffer_pool& pool, int flags) noexcept
    : socket_op(complete, &do_prepare), pool_(&pool), flags_(flags)
  {
    route_ = &do_route;
  }

  // The outcome: the error (eof for an orderly end of stream) and, on
  // success, the buffer holding the data. delivering is false when the
  // operation is destroyed unrun (context shutdown): the pool is then not
  // touched, since it may be gone already.
  void results(boost::system::error_code& ec, provided_buffer& b, bool delivering) noexcept
  {
    int r = (no_buffer_ && !prepared_as_nop()) ? -ENOBUFS : result();
    std::uint32_t id = id_;
    if (cqe_flags_ & IORING_CQE_F_BUFFER)
      id = cqe_flags_ >> IORING_CQE_BUFFER_SHIFT;
    if (state_ && delivering)
      state_->recv_drained_.store(r >= 0 && static_cast<std::size_t>(r) < pool_->buffer_size()
          && !(cqe_flags_ & IORING_CQE_F_SOCK_NONEMPTY), std::memory_order_relaxed);
    if (r < 0)
      ec = error_for(r);
    else if (r == 0)
      ec = boost::asio::error::eof;
    if (id != provided_buffer_pool::nil && delivering)
    {
      if (r > 0)
        b = pool_->make_buffer(id, static_cast<std::size_t>(r));
      else
        pool_->give_back(id);
    }
  }

private:
  static runner* do_route(socket_op* base, runner* here) noexcept
  {
    return static_cast<recv_provided_op_base*>(base)->pool_->route(here);
  }

  // On the pool's home runner's thread.
  static void do_prepare(uring_operation* base, ::io_uring_sqe* sqe)
  {
    auto* o = static_cast<recv_provided_op_base*>(base);
    if (o->prepare_cancelled(sqe))
      return;
    int fd = o->state_->fd_;
    provided_buffer_pool& p = *o->pool_;
    unsigned len = static_cast<unsigned>(p.buffer_size());
    if (p.prepare_kernel_mode())
    {
      ::io_uring_prep_recv(sqe, fd, nullptr, len, o->flags_);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = p.group();
    }
    else
    {
      o->id_ = p.take();
      if (o->id_ == provided_buffer_pool::nil)
      {
        ::io_uring_prep_nop(sqe);
        o->no_buffer_ = true;
        return;
      }
      ::io_uring_prep_recv(sqe, fd, p.data_of(o->id_), len, o->flags_);
    }
    // As recv_op: after a receive that emptied the socket, arm poll first.
    if (o->state_->recv_drained_.load(std::memory_order_relaxed)
        && uring::features().recv_poll_first)
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  }

  provided_buffer_pool* pool_;
  int flags_;
  std::uint32_t id_ = provided_buffer_pool::nil;  // fallback: the buffer taken
  bool no_buffer_ = false;                        // fallback: none was free
};

template <typename Handler, typename IoExecutor>
class recv_provided_op final : public recv_provided_op_base
{
public:
  recv_provided_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      provided_buffer_pool& pool, int flags)
    : recv_provided_op_base(&do_complete, pool, flags),
      handler_(std::move(handler), io_ex, owner)
  {
  }

private:
  template <typename, typename> friend class socket_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<recv_provided_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    provided_buffer b;
    o->results(ec, b, owner != nullptr);
    socket_handler<Handler, IoExecutor>::upcall(owner, o, ec, std::move(b));
  }

  socket_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_OPS_RECV_PROVIDED_OP_HPP
