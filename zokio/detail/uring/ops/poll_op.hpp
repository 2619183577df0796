// zokio/detail/uring/ops/poll_op.hpp: IORING_OP_POLL_ADD (linux 5.1), the
// readiness wait behind async_wait(wait_read / wait_write / wait_error).
#ifndef ZOKIO_DETAIL_URING_OPS_POLL_OP_HPP
#define ZOKIO_DETAIL_URING_OPS_POLL_OP_HPP

#include <zokio/detail/uring/socket_handler.hpp>
#include <zokio/detail/uring/socket_op.hpp>

#include <poll.h>

namespace zokio {
namespace detail {

template <typename Handler, typename IoExecutor>
class poll_op final : public socket_op
{
public:
  poll_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, unsigned events)
    : socket_op(&do_complete, &do_prepare),
      handler_(std::move(handler), io_ex, owner),
      events_(events)
  {
  }

private:
  template <typename, typename> friend class socket_handler;

  static void do_prepare(uring_operation* base, ::io_uring_sqe* sqe)
  {
    auto* o = static_cast<poll_op*>(base);
    if (o->prepare_cancelled(sqe))
      return;
    ::io_uring_prep_poll_add(sqe, o->state_->fd_, o->events_);
  }

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<poll_op*>(base);
    if (!o->finish())
      return;
    int r = o->result();
    boost::system::error_code ec = error_for(r < 0 ? r : 0);
    socket_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  socket_handler<Handler, IoExecutor> handler_;
  unsigned events_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_OPS_POLL_OP_HPP
