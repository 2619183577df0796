// zokio/detail/socket/ops/accept_op.hpp: accept a connection
// (IORING_OP_ACCEPT, linux 5.5, on io_uring; accept on readiness).
//
// The new descriptor is created close-on-exec. Running out of descriptors
// (EMFILE, ENFILE) completes the operation with that error and leaves the
// connection in the listen backlog: a later accept takes it once
// descriptors are free again.
#ifndef ZOKIO_DETAIL_SOCKET_OPS_ACCEPT_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_ACCEPT_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <boost/asio/error.hpp>

#include <unistd.h>
#include <sys/socket.h>

namespace zokio {
namespace detail {

// The accept request; Endpoint receives the peer's address when wanted.
template <typename Endpoint>
class accept_op_base : public socket_op
{
protected:
  accept_op_base(func_type complete, Endpoint* peer_endpoint) noexcept
    : socket_op(complete, io_request::accept), peer_endpoint_(peer_endpoint),
      addrlen_(peer_endpoint ? static_cast<::socklen_t>(peer_endpoint->capacity()) : 0)
  {
    if (peer_endpoint)
    {
      req_.data = peer_endpoint->data();
      req_.extra = &addrlen_;
    }
  }

  // The new descriptor, or -1 with ec set. On success the peer endpoint
  // (if any) is given its size, unless the operation is being destroyed.
  int take_result(boost::system::error_code& ec, bool delivering) noexcept
  {
    int r = result();
    if (r < 0)
    {
      ec = error_for(r);
      return -1;
    }
    if (peer_endpoint_ && delivering)
    {
      if (via_engine())
      {
        // The multishot request shares no address buffer with this
        // operation: ask the new socket.
        addrlen_ = static_cast<::socklen_t>(peer_endpoint_->capacity());
        if (::getpeername(r, static_cast<::sockaddr*>(static_cast<void*>(peer_endpoint_->data())),
                &addrlen_) != 0)
          addrlen_ = 0;
      }
      peer_endpoint_->resize(addrlen_);
    }
    return r;
  }

private:
  Endpoint* peer_endpoint_;
  ::socklen_t addrlen_;
};

// Accepts into an existing (closed) socket object: void(error_code).
template <typename Socket, typename Handler, typename IoExecutor>
class accept_op final : public accept_op_base<typename Socket::endpoint_type>
{
  using base_type = accept_op_base<typename Socket::endpoint_type>;

public:
  accept_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, Socket& peer,
      typename Socket::endpoint_type* peer_endpoint, const typename Socket::protocol_type& protocol)
    : base_type(&do_complete, peer_endpoint),
      handler_(std::move(handler), io_ex, owner),
      peer_(peer),
      protocol_(protocol)
  {
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<accept_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    int fd = o->take_result(ec, owner != nullptr);
    if (fd >= 0)
    {
      if (owner)
        o->peer_.assign(o->protocol_, fd, ec);
      if (!owner || ec)
        ::close(fd);
    }
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  bound_handler<Handler, IoExecutor> handler_;
  Socket& peer_;
  typename Socket::protocol_type protocol_;
};

// Accepts a new socket object, given to the handler: void(error_code, Socket).
template <typename Socket, typename Handler, typename IoExecutor>
class move_accept_op final : public accept_op_base<typename Socket::endpoint_type>
{
  using base_type = accept_op_base<typename Socket::endpoint_type>;
  using peer_executor = typename Socket::executor_type;

public:
  move_accept_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const peer_executor& peer_ex, typename Socket::endpoint_type* peer_endpoint,
      const typename Socket::protocol_type& protocol)
    : base_type(&do_complete, peer_endpoint),
      handler_(std::move(handler), io_ex, owner),
      peer_ex_(peer_ex),
      protocol_(protocol)
  {
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<move_accept_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    int fd = o->take_result(ec, owner != nullptr);
    if (!owner)
    {
      if (fd >= 0)
        ::close(fd);
      return bound_handler<Handler, IoExecutor>::discard(o);
    }
    Socket peer(o->peer_ex_);
    if (fd >= 0)
    {
      peer.assign(o->protocol_, fd, ec);
      if (ec)
        ::close(fd);
    }
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, std::move(peer));
  }

  bound_handler<Handler, IoExecutor> handler_;
  peer_executor peer_ex_;
  typename Socket::protocol_type protocol_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_ACCEPT_OP_HPP
