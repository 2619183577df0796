// zokio/detail/socket/ops/poll_op.hpp: the readiness wait behind
// async_wait(wait_read / wait_write / wait_error) (IORING_OP_POLL_ADD, linux
// 5.1, on io_uring; the readiness driver's own wait elsewhere).
#ifndef ZOKIO_DETAIL_SOCKET_OPS_POLL_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_POLL_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <poll.h>

namespace zokio {
namespace detail {

template <typename Handler, typename IoExecutor>
class poll_op final : public socket_op
{
public:
  poll_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, unsigned events)
    : socket_op(&do_complete, io_request::poll),
      handler_(std::move(handler), io_ex, owner)
  {
    req_.flags = static_cast<int>(events);
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<poll_op*>(base);
    if (!o->finish())
      return;
    int r = o->result();
    boost::system::error_code ec = error_for(r < 0 ? r : 0);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_POLL_OP_HPP
