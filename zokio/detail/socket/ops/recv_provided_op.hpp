// zokio/detail/socket/ops/recv_provided_op.hpp: receive into a buffer of a
// provided_buffer_pool (an io_request::recv_pooled).
//
// io_uring, kernel mode: IORING_OP_RECV with IOSQE_BUFFER_SELECT (buffer
// rings: linux 5.19) names the pool's buffer group instead of a buffer; the
// kernel picks a buffer only when data is there and reports its id in the
// CQE flags. A completion that carries a buffer but no data (end of stream,
// an error, a cancellation that raced with the data) gives it back.
//
// io_uring, fallback mode: the driver takes a free buffer of the pool when it
// prepares the SQE and receives into it with a plain IORING_OP_RECV; no free
// buffer completes the operation with ENOBUFS (prepared as a NOP).
//
// Readiness drivers: the driver takes a free buffer only when the socket is
// readable and gives it back if the receive would block, so an idle
// connection holds no buffer there either.
//
// Either way the driver reports the buffer in buffer_id_. The
// operation is routed (socket_op::route_) to the pool's home runner, so it is
// always carried out on the thread that owns the pool's buffers (its ring, on
// io_uring). Its completion may run on any thread of the context: it only
// reads the pool's constant fields and gives buffers back through give_back
// (any thread).
#ifndef ZOKIO_DETAIL_SOCKET_OPS_RECV_PROVIDED_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_RECV_PROVIDED_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include <boost/asio/error.hpp>

namespace zokio {
namespace detail {

class recv_provided_op_base : public socket_op
{
protected:
  recv_provided_op_base(func_type complete, provided_buffer_pool& pool, int flags) noexcept
    : socket_op(complete, io_request::recv_pooled), pool_(&pool)
  {
    route_ = &do_route;
    req_.data = &pool;
    req_.size = pool.buffer_size();
    req_.flags = flags;
    req_.hints |= io_request::stream;  // async_receive_provided: stream sockets only
    use_drain_hint();
  }

  // The outcome: the error (eof for an orderly end of stream) and, on
  // success, the buffer holding the data. delivering is false when the
  // operation is destroyed unrun (context shutdown): the pool is then not
  // touched, since it may be gone already.
  void results(boost::system::error_code& ec, provided_buffer& b, bool delivering) noexcept
  {
    int r = (no_buffer_ && !prepared_as_nop()) ? -ENOBUFS : result();
    std::uint32_t id = buffer_id_;  // set by the driver when a buffer holds the data (or no_buffer_id)
    if (state_ && delivering)
      state_->recv_drained_.store(r >= 0 && static_cast<std::size_t>(r) < pool_->buffer_size()
          && !(result_flags_ & flag_socket_nonempty), std::memory_order_relaxed);
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

  provided_buffer_pool* pool_;
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
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<recv_provided_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    provided_buffer b;
    o->results(ec, b, owner != nullptr);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, std::move(b));
  }

  bound_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_RECV_PROVIDED_OP_HPP
