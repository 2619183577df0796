// zokio/detail/socket/ops/connect_op.hpp: connect a socket
// (IORING_OP_CONNECT, linux 5.5, on io_uring; a non-blocking connect and a
// wait for writability on readiness).
// Refused, unreachable and timed-out connections complete with the system
// error (connection_refused, ...).
#ifndef ZOKIO_DETAIL_SOCKET_OPS_CONNECT_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_CONNECT_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <sys/socket.h>

namespace zokio {
namespace detail {

template <typename Endpoint, typename Handler, typename IoExecutor>
class connect_op final : public socket_op
{
public:
  connect_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, const Endpoint& peer)
    : socket_op(&do_complete, io_request::connect),
      handler_(std::move(handler), io_ex, owner),
      peer_(peer)
  {
    req_.data = peer_.data();
    req_.size = peer_.size();
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<connect_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec = error_for(o->result());
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  bound_handler<Handler, IoExecutor> handler_;
  Endpoint peer_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_CONNECT_OP_HPP
