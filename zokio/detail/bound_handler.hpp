// zokio/detail/bound_handler.hpp: the handler part of an operation (a
// socket, descriptor or file operation, a timer wait, a NOP): its storage,
// the memory of the operation (the handler's associated allocator), the
// outstanding work on its executor, and the upcall. One idiom, written once:
// allocate with the handler's allocator, free before invoking (so the
// handler's next operation reuses the block), invoke through the handler's
// executor, or only free when the context is shutting down.
#ifndef ZOKIO_DETAIL_BOUND_HANDLER_HPP
#define ZOKIO_DETAIL_BOUND_HANDLER_HPP

#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/handler_work.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>

#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// Op is the concrete operation class: it holds a bound_handler member named
// handler_ (and befriends bound_handler, which reaches it).
template <typename Handler, typename IoExecutor>
class bound_handler
{
public:
  using allocator_type = op_allocator_t<boost::asio::associated_allocator_t<Handler>>;

  template <typename H>
  bound_handler(H&& handler, const IoExecutor& io_ex, scheduler& owner)
    : handler_(std::forward<H>(handler)), work_(handler_, io_ex, owner)
  {
  }

  // Allocates and constructs an Op with the handler's allocator; Op's
  // constructor takes the handler first.
  template <typename Op, typename H, typename... Args>
  static Op* create(H& handler, Args&&... args)
  {
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler));
    op_ptr<Op, allocator_type> p(alloc);
    p.construct(std::move(handler), std::forward<Args>(args)...);
    return p.release();
  }

  // The same from a handler passed as initiations receive it: an rvalue
  // Handler is moved into the operation; anything else (an lvalue, or
  // another type Handler is constructible from) is first made a Handler.
  template <typename Op, typename H, typename... Args>
  static Op* create_from(H&& handler, Args&&... args)
  {
    if constexpr (std::is_same_v<H, Handler>)
    {
      return create<Op>(handler, std::forward<Args>(args)...);
    }
    else
    {
      Handler h(std::forward<H>(handler));
      return create<Op>(h, std::forward<Args>(args)...);
    }
  }

  // Frees op, then (unless owner is null: destruction) invokes the handler
  // with args through its executor. The memory goes back before the upcall,
  // so the handler's next operation reuses the block.
  template <typename Op, typename... Args>
  static void upcall(scheduler* owner, Op* op, Args&&... args)
  {
    bound_handler& self = op->handler_;
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(self.handler_));
    op_ptr<Op, allocator_type> p(alloc, op);
    handler_work<Handler, IoExecutor> work(std::move(self.work_));
    if constexpr (sizeof...(Args) == 1)
    {
      boost::asio::detail::binder1<Handler, std::decay_t<Args>...> bound(
          0, std::move(self.handler_), args...);
      p.reset();
      if (owner)
        work.complete(bound, bound.handler_);
    }
    else
    {
      static_assert(sizeof...(Args) == 2);
      upcall2(owner, p, work, self, std::forward<Args>(args)...);
    }
  }

  // Frees op without invoking the handler (the context is shutting down).
  template <typename Op>
  static void discard(Op* op) noexcept
  {
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(op->handler_.handler_));
    op_ptr<Op, allocator_type> p(alloc, op);
  }

  // The cancellation slot of the handler (before the operation starts).
  auto slot() const noexcept { return boost::asio::get_associated_cancellation_slot(handler_); }

private:
  template <typename P, typename W, typename A1, typename A2>
  static void upcall2(scheduler* owner, P& p, W& work, bound_handler& self, A1&& a1, A2&& a2)
  {
    if constexpr (std::is_nothrow_copy_constructible_v<std::decay_t<A2>>)
    {
      boost::asio::detail::binder2<Handler, std::decay_t<A1>, std::decay_t<A2>> bound(
          0, std::move(self.handler_), a1, a2);
      p.reset();
      if (owner)
        work.complete(bound, bound.handler_);
    }
    else
    {
      boost::asio::detail::move_binder2<Handler, std::decay_t<A1>, std::decay_t<A2>> bound(
          0, std::move(self.handler_), a1, std::move(a2));
      p.reset();
      if (owner)
        work.complete(bound, bound.handler_);
    }
  }

  Handler handler_;
  handler_work<Handler, IoExecutor> work_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_BOUND_HANDLER_HPP
