// zokio/detail/uring/ops/connect_op.hpp: IORING_OP_CONNECT (linux 5.5).
// Refused, unreachable and timed-out connections complete with the system
// error (connection_refused, ...).
#ifndef ZOKIO_DETAIL_URING_OPS_CONNECT_OP_HPP
#define ZOKIO_DETAIL_URING_OPS_CONNECT_OP_HPP

#include <zokio/detail/uring/socket_handler.hpp>
#include <zokio/detail/uring/socket_op.hpp>

#include <sys/socket.h>

namespace zokio {
namespace detail {

template <typename Endpoint, typename Handler, typename IoExecutor>
class connect_op final : public socket_op
{
public:
  connect_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, const Endpoint& peer)
    : socket_op(&do_complete, &do_prepare),
      handler_(std::move(handler), io_ex, owner),
      peer_(peer)
  {
  }

private:
  template <typename, typename> friend class socket_handler;

  static void do_prepare(uring_operation* base, ::io_uring_sqe* sqe)
  {
    auto* o = static_cast<connect_op*>(base);
    if (o->prepare_cancelled(sqe))
      return;
    ::io_uring_prep_connect(sqe, o->state_->fd_, static_cast<const ::sockaddr*>(
        static_cast<const void*>(o->peer_.data())), static_cast<::socklen_t>(o->peer_.size()));
  }

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<connect_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec = error_for(o->result());
    socket_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  socket_handler<Handler, IoExecutor> handler_;
  Endpoint peer_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_OPS_CONNECT_OP_HPP
