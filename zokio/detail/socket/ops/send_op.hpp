// zokio/detail/socket/ops/send_op.hpp: send on a socket.
//
// A send request for one buffer, sendmsg for a sequence of buffers or a
// destination address (send_to): IORING_OP_SEND (linux 5.6) and
// IORING_OP_SENDMSG (5.3) on io_uring, the system calls on readiness.
// MSG_NOSIGNAL is always added where the system has it (elsewhere the
// socket is given SO_NOSIGPIPE when opened): writing to a reset connection completes with an error
// (broken_pipe, connection_reset) and never raises SIGPIPE.
#ifndef ZOKIO_DETAIL_SOCKET_OPS_SEND_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_SEND_OP_HPP

#include <zokio/detail/socket/socket_buffers.hpp>
#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <boost/asio/buffer.hpp>

#include <cstring>
#include <sys/socket.h>

namespace zokio {
namespace detail {

template <typename ConstBufferSequence, std::size_t MaxBuffers>
class send_op_base : public socket_op
{
public:
  std::size_t total_size() const noexcept { return bufs_.total_size(); }

protected:
  send_op_base(func_type complete, const ConstBufferSequence& buffers, int flags) noexcept
    : socket_op(complete, io_request::sendmsg), bufs_(buffers)
  {
    std::memset(&msg_, 0, sizeof(msg_));
    msg_.msg_iov = bufs_.iov();
    msg_.msg_iovlen = bufs_.count();
#if defined(MSG_NOSIGNAL)
    flags |= MSG_NOSIGNAL;
#endif
    req_.flags = flags;
    if (bufs_.count() == 1)
    {
      req_.kind = io_request::send;
      req_.data = bufs_.iov()->iov_base;
      req_.size = bufs_.iov()->iov_len;
    }
    else
    {
      req_.data = &msg_;
    }
  }

  void set_destination(const void* name, ::socklen_t namelen) noexcept
  {
    msg_.msg_name = const_cast<void*>(name);
    msg_.msg_namelen = namelen;
    req_.kind = io_request::sendmsg;
    req_.data = &msg_;
    req_.size = 0;
  }

  void results(boost::system::error_code& ec, std::size_t& n) const noexcept
  {
    int r = result();
    n = 0;
    if (r < 0)
      ec = error_for(r);
    else
      n = static_cast<std::size_t>(r);
  }

private:
  socket_buffers<boost::asio::const_buffer, ConstBufferSequence, MaxBuffers> bufs_;
  ::msghdr msg_;
};

template <typename ConstBufferSequence, std::size_t MaxBuffers, typename Handler,
    typename IoExecutor>
class send_op final : public send_op_base<ConstBufferSequence, MaxBuffers>
{
  using base_type = send_op_base<ConstBufferSequence, MaxBuffers>;

public:
  send_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const ConstBufferSequence& buffers, int flags)
    : base_type(&do_complete, buffers, flags),
      handler_(std::move(handler), io_ex, owner)
  {
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<send_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

// send_to: the destination is copied into the operation.
template <typename ConstBufferSequence, typename Endpoint, typename Handler,
    typename IoExecutor>
class sendto_op final : public send_op_base<ConstBufferSequence, datagram_max_buffers>
{
  using base_type = send_op_base<ConstBufferSequence, datagram_max_buffers>;

public:
  sendto_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const ConstBufferSequence& buffers, const Endpoint& destination, int flags)
    : base_type(&do_complete, buffers, flags),
      handler_(std::move(handler), io_ex, owner),
      destination_(destination)
  {
    this->set_destination(destination_.data(), static_cast<::socklen_t>(destination_.size()));
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<sendto_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
  Endpoint destination_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_SEND_OP_HPP
