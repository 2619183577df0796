// zokio/detail/timer/wait_handler.hpp: a timer wait bound to its handler.
#ifndef ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP
#define ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/timer/wait_op.hpp>

#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

template <typename Handler, typename IoExecutor>
class wait_handler final : public wait_op
{
public:
  // Made by bound_handler::create_from (its allocator, its work).
  wait_handler(Handler&& handler, const IoExecutor& io_ex, scheduler& owner)
    : wait_op(&do_complete), handler_(std::move(handler), io_ex, owner)
  {
  }

  // Destroys and frees an operation that was never queued (initiation failed).
  void discard() noexcept { bound_handler<Handler, IoExecutor>::discard(this); }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<wait_handler*>(base);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, o->ec_);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP
