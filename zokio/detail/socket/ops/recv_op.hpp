// zokio/detail/socket/ops/recv_op.hpp: receive on a socket.
//
// A recv request for one buffer, recvmsg for a sequence of buffers or when
// the sender's address is wanted (receive_from): IORING_OP_RECV (linux 5.6)
// and IORING_OP_RECVMSG (5.3) on io_uring, the system calls on readiness.
// On a stream socket a zero-byte result with a non-empty buffer is the end
// of the stream (boost::asio::error::eof).
#ifndef ZOKIO_DETAIL_SOCKET_OPS_RECV_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_RECV_OP_HPP

#include <zokio/detail/socket/socket_buffers.hpp>
#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

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
    : socket_op(complete, io_request::recvmsg), bufs_(buffers), is_stream_(is_stream)
  {
    std::memset(&msg_, 0, sizeof(msg_));
    msg_.msg_name = name;
    msg_.msg_namelen = namelen;
    msg_.msg_iov = bufs_.iov();
    msg_.msg_iovlen = bufs_.count();
    req_.flags = flags;
    if (name == nullptr && bufs_.count() == 1)
    {
      req_.kind = io_request::recv;
      req_.data = bufs_.iov()->iov_base;
      req_.size = bufs_.iov()->iov_len;
    }
    else
    {
      req_.data = &msg_;
    }
    // After a receive that emptied the socket the next one would find
    // nothing: the driver may wait for data first (io_request::poll_first).
    if (is_stream)
    {
      use_drain_hint();
      req_.hints |= io_request::stream;
    }
  }

  // The outcome: bytes received, or the error. Also records for the next
  // receive whether this one emptied the socket.
  void results(boost::system::error_code& ec, std::size_t& n) const noexcept
  {
    int r = result();
    if (is_stream_ && state_)
      state_->recv_drained_.store(r >= 0 && static_cast<std::size_t>(r) < bufs_.total_size()
          && !(result_flags_ & flag_socket_nonempty), std::memory_order_relaxed);
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
  socket_buffers<boost::asio::mutable_buffer, MutableBufferSequence, MaxBuffers> bufs_;
  ::msghdr msg_;
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
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<recv_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
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
  template <typename, typename> friend class bound_handler;

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
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
  Endpoint& sender_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_RECV_OP_HPP
