// zokio/impl/spawn.hpp: template definitions of zokio/spawn.hpp.
#ifndef ZOKIO_IMPL_SPAWN_HPP
#define ZOKIO_IMPL_SPAWN_HPP

#include <zokio/detail/future/future_handler.hpp>
#include <zokio/detail/handler_work.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/strand.hpp>

#include <boost/system/system_error.hpp>

#include <atomic>
#include <exception>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// The state of a spawned coroutine. Filled by co_spawn's completion handler
// (a future_handler, whose cancellation slot co_spawn connects to the
// coroutine's cancellation state).
//
// Cancellation protocol (abort(), cancel(), dropping a plain future of it):
//  - Before the coroutine's body has started (phase_ not_started), the
//    request is only recorded (phase_ -> aborted_early); the body, when it
//    starts, sees it and throws operation_aborted without running. Asio's
//    co_spawn must not see an emitted cancellation before the body's first
//    suspension: its entry point would then throw from a co_await outside
//    its own try block (Boost 1.81, impl/co_spawn.hpp).
//  - Once started, the request is emitted on the coroutine's cancellation
//    signal on a thread where it cannot race with the coroutine itself:
//      serialized_ (the coroutine runs on a strand, as on a thread_pool):
//        dispatched through ex_, the strand;
//      home context known (an io_context): carried there as an
//        immediate-class handler (or emitted inline on its thread);
//      any other executor: dispatched through ex_.
// phase_ is decided by one compare-exchange on each side (acq_rel), so
// exactly one of "body starts" and "request recorded early" wins.
template <typename T, typename Executor>
class spawn_state final : public future_state<T>
{
public:
  spawn_state(const Executor& ex, bool serialized)
    : future_state<T>(&do_destroy, &do_cancel), ex_(ex), serialized_(serialized)
  {
  }

  // Called by the body as it starts, on the coroutine's thread. False if a
  // cancellation was requested before.
  bool start() noexcept
  {
    unsigned char expected = not_started;
    return phase_.compare_exchange_strong(expected, started, std::memory_order_acq_rel);
  }

private:
  static constexpr unsigned char not_started = 0;
  static constexpr unsigned char started = 1;
  static constexpr unsigned char aborted_early = 2;

  static void do_cancel(future_state_base* base, boost::asio::cancellation_type_t type) noexcept
  {
    auto* self = static_cast<spawn_state*>(base);
    unsigned char expected = not_started;
    if (self->phase_.compare_exchange_strong(expected, aborted_early, std::memory_order_acq_rel))
      return; // the body will throw operation_aborted when it starts
    if (self->home() != nullptr && !self->serialized_)
    {
      future_state_base::emit_on_home(base, type);
      return;
    }
    self->add_ref();
    state_ref ref(self);
    try
    {
      boost::asio::dispatch(self->ex_,
          [ref = std::move(ref), type]() mutable {
            future_state_base* s = ref.get();
            if (!s->ready())
              s->signal().emit(type);
          });
    }
    catch (...)
    {
      // Cancellation is a request; the coroutine finishes on its own.
    }
  }

  static void do_destroy(future_state_base* base) noexcept
  {
    destroy_state(static_cast<spawn_state*>(base));
  }

  Executor ex_;             // the coroutine's executor (a strand if serialized_)
  const bool serialized_;   // cancellations go through ex_ even with a home
  std::atomic<unsigned char> phase_{not_started};
};

template <typename T>
using spawn_handler = future_handler<std::conditional_t<std::is_void_v<T>,
    future_traits<std::exception_ptr>, future_traits<std::exception_ptr, T>>,
    std::allocator<void>>;

// The coroutine co_spawn runs: checks the start gate, then runs the user's
// coroutine (a ready awaitable, or a function object that makes one, called
// here so that its captures live in this frame). s outlives the body: the
// completion handler, which co_spawn invokes after it, holds a reference.
template <typename T, typename AwaitableExecutor, typename State, typename F>
boost::asio::awaitable<T, AwaitableExecutor> spawn_body(State* s, F f)
{
  if (!s->start())
    throw boost::system::system_error(boost::asio::error::operation_aborted, "zokio::spawn");
  if constexpr (requires { f(); })
    co_return co_await f();
  else
    co_return co_await std::move(f);
}

template <typename T, typename AwaitableExecutor, typename Executor, typename Function>
join_handle<T> do_spawn(const Executor& ex, Function&& f)
{
  using strand_type = boost::asio::strand<Executor>;
  scheduler* home = scheduler_of(ex);
  if constexpr (std::is_constructible_v<AwaitableExecutor, const strand_type&>)
  {
    // On a pool the coroutine may resume on any worker; a strand keeps its
    // resumptions and the cancellation requests carried to it apart.
    if (home != nullptr && home->kind() == scheduler::context_kind::thread_pool)
    {
      strand_type strand(ex);
      using state_type = spawn_state<T, AwaitableExecutor>;
      auto* s = create_state<state_type>(AwaitableExecutor(strand), true);
      s->set_home(home, true);
      join_handle<T> h = future_access::make_join_handle(future_access::adopt<T>(s));
      boost::asio::co_spawn(strand,
          spawn_body<T, AwaitableExecutor>(s, std::decay_t<Function>(std::forward<Function>(f))),
          spawn_handler<T>(s, std::allocator<void>()));
      return h;
    }
  }
  using state_type = spawn_state<T, AwaitableExecutor>;
  auto* s = create_state<state_type>(AwaitableExecutor(ex), false);
  s->set_home(home, true);
  join_handle<T> h = future_access::make_join_handle(future_access::adopt<T>(s));
  boost::asio::co_spawn(ex,
      spawn_body<T, AwaitableExecutor>(s, std::decay_t<Function>(std::forward<Function>(f))),
      spawn_handler<T>(s, std::allocator<void>()));
  return h;
}

} // namespace detail

template <typename Executor, typename T, typename AwaitableExecutor>
  requires (boost::asio::execution::is_executor<Executor>::value
      || boost::asio::is_executor<Executor>::value)
    && std::is_convertible_v<Executor, AwaitableExecutor>
join_handle<T> spawn(const Executor& ex, boost::asio::awaitable<T, AwaitableExecutor> a)
{
  return detail::do_spawn<T, AwaitableExecutor>(ex, std::move(a));
}

template <typename ExecutionContext, typename A>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
auto spawn(ExecutionContext& ctx, A&& a)
{
  return zokio::spawn(ctx.get_executor(), std::forward<A>(a));
}

template <typename Executor, typename F>
  requires ((boost::asio::execution::is_executor<Executor>::value
      || boost::asio::is_executor<Executor>::value)
    && requires(F f) { std::declval<std::decay_t<F>&>()(); })
auto spawn(const Executor& ex, F&& f)
{
  using awaitable_type = std::invoke_result_t<std::decay_t<F>&>;
  using value_type = typename awaitable_type::value_type;
  using awaitable_executor = typename awaitable_type::executor_type;
  return detail::do_spawn<value_type, awaitable_executor>(ex, std::forward<F>(f));
}

} // namespace zokio

#endif // ZOKIO_IMPL_SPAWN_HPP
