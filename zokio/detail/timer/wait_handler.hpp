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
  // Allocates the operation with the handler's allocator.
  // An rvalue handler is moved into it; anything else is copied first.
  template <typename H>
  static wait_handler* create(H&& handler, const IoExecutor& io_ex, scheduler& owner)
  {
    using bound = bound_handler<Handler, IoExecutor>;
    if constexpr (std::is_same_v<H, Handler>)
    {
      return bound::template create<wait_handler>(handler, io_ex, owner);
    }
    else
    {
      Handler h(std::forward<H>(handler));
      return bound::template create<wait_handler>(h, io_ex, owner);
    }
  }

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
