// zokio/detail/uring/ops/recv_op.hpp: receive on a socket.
//
// IORING_OP_RECV (linux 5.6) for one buffer, IORING_OP_RECVMSG (5.3) for a
// sequence of buffers or when the sender's address is wanted
// (receive_from). On a stream socket a zero-byte result with a non-empty
// buffer is the end of the stream (boost::asio::error::eof).
#ifndef ZOKIO_DETAIL_URING_OPS_RECV_OP_HPP
#define ZOKIO_DETAIL_URING_OPS_RECV_OP_HPP

#include <zokio/detail/uring/net_features.hpp>
#include <zokio/detail/uring/socket_buffers.hpp>
#include <zokio/detail/uring/socket_handler.hpp>
#include <zokio/detail/uring/socket_op.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include <cstring>
#include <sys/socket.h>

namespace zokio {
namespace detail {

template <typename MutableBufferSequence, std::size_t MaxBuffers>
class recv_op_base : public socket_op
{
public:
  // The total size of the buffers (zero-length receives on a stream
  // complete at once).
  std::size_t total_size() const noexcept { return bufs_.total_size(); }

protected:
  recv_op_base(func_type complete, const MutableBufferSequence& buffers, int flags,
      bool is_stream, void* name = nullptr, ::socklen_t namelen = 0) noexcept
    : socket_op(complete, &do_prepare), bufs_(buffers), flags_(flags), is_stream_(is_stream)
  {
    std::memset(&msg_, 0, sizeof(msg_));
    msg_.msg_name = name;
    msg_.msg_namelen = namelen;
    msg_.msg_iov = bufs_.iov();
    msg_.msg_iovlen = bufs_.count();
  }

  // The outcome: bytes received, or the error. Also records for the next
  // receive whether this one emptied the socket.
  void results(boost::system::error_code& ec, std::size_t& n) const noexcept
  {
    int r = result();
    if (is_stream_ && state_)
      state_->recv_drained_.store(r >= 0 && static_cast<std::size_t>(r) < bufs_.total_size()
          && !(cqe_flags_ & IORING_CQE_F_SOCK_NONEMPTY), std::memory_order_relaxed);
    n = 0;
    if (r < 0)
    {
      ec = error_for(r);
    }
    else
    {
      n = static_cast<std::size_t>(r);
      if (r == 0 && is_stream_ && bufs_.total_size() != 0)
        ec = boost::asio::error::eof;
    }
  }

  ::socklen_t name_length() const noexcept { return msg_.msg_namelen; }

private:
  static void do_prepare(uring_operation* base, ::io_uring_sqe* sqe)
  {
    auto* o = static_cast<recv_op_base*>(base);
    if (o->prepare_cancelled(sqe))
      return;
    int fd = o->state_->fd_;
    if (o->msg_.msg_name == nullptr && o->msg_.msg_iovlen == 1)
      ::io_uring_prep_recv(sqe, fd, o->bufs_.iov()->iov_base, o->bufs_.iov()->iov_len, o->flags_);
    else
      ::io_uring_prep_recvmsg(sqe, fd, &o->msg_, static_cast<unsigned>(o->flags_));
    // After a receive that emptied the socket the next one would find
    // nothing: arm poll first and save the failed attempt (linux 5.19).
    if (o->is_stream_ && o->state_->recv_drained_.load(std::memory_order_relaxed)
        && uring::features().recv_poll_first)
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  }

  socket_buffers<boost::asio::mutable_buffer, MutableBufferSequence, MaxBuffers> bufs_;
  ::msghdr msg_;
  int flags_;
  bool is_stream_;
};

template <typename MutableBufferSequence, std::size_t MaxBuffers, typename Handler,
    typename IoExecutor>
class recv_op final : public recv_op_base<MutableBufferSequence, MaxBuffers>
{
  using base_type = recv_op_base<MutableBufferSequence, MaxBuffers>;

public:
  recv_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const MutableBufferSequence& buffers, int flags, bool is_stream)
    : base_type(&do_complete, buffers, flags, is_stream),
      handler_(std::move(handler), io_ex, owner)
  {
  }

private:
  template <typename, typename> friend class socket_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<recv_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    socket_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  socket_handler<Handler, IoExecutor> handler_;
};

// receive_from: the kernel writes the sender's address into the caller's
// endpoint (which must outlive the operation, as in Asio).
template <typename MutableBufferSequence, typename Endpoint, typename Handler,
    typename IoExecutor>
class recvfrom_op final : public recv_op_base<MutableBufferSequence, datagram_max_buffers>
{
  using base_type = recv_op_base<MutableBufferSequence, datagram_max_buffers>;

public:
  recvfrom_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const MutableBufferSequence& buffers, Endpoint& sender, int flags)
    : base_type(&do_complete, buffers, flags, false, sender.data(),
          static_cast<::socklen_t>(sender.capacity())),
      handler_(std::move(handler), io_ex, owner),
      sender_(sender)
  {
  }

private:
  template <typename, typename> friend class socket_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<recvfrom_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    if (!ec && owner)
      o->sender_.resize(o->name_length());
    socket_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  socket_handler<Handler, IoExecutor> handler_;
  Endpoint& sender_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_OPS_RECV_OP_HPP
