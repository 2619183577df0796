// zokio/impl/spawn.hpp: template definitions of zokio/spawn.hpp.
#ifndef ZOKIO_IMPL_SPAWN_HPP
#define ZOKIO_IMPL_SPAWN_HPP

#include <zokio/detail/future/future_handler.hpp>
#include <zokio/detail/handler_work.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// The state of a spawned coroutine. Filled by co_spawn's completion handler
// (a future_handler, whose cancellation slot co_spawn connects to the
// coroutine's cancellation state). A cancellation is emitted on the
// coroutine's executor: through the home context for a zokio executor,
// through the executor itself (dispatch) for any other.
template <typename T, typename Executor>
class spawn_state final : public future_state<T>
{
public:
  explicit spawn_state(const Executor& ex)
    : future_state<T>(&do_destroy, &do_cancel), ex_(ex)
  {
  }

private:
  static void do_cancel(future_state_base* base, boost::asio::cancellation_type_t type) noexcept
  {
    auto* self = static_cast<spawn_state*>(base);
    if (self->home() != nullptr)
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

  Executor ex_;
};

template <typename T>
using spawn_handler = future_handler<std::conditional_t<std::is_void_v<T>,
    future_traits<std::exception_ptr>, future_traits<std::exception_ptr, T>>,
    std::allocator<void>>;

template <typename T, typename AwaitableExecutor, typename Executor, typename Function>
join_handle<T> do_spawn(const Executor& ex, Function&& f)
{
  using state_type = spawn_state<T, AwaitableExecutor>;
  auto* s = create_state<state_type>(AwaitableExecutor(ex));
  s->set_home(scheduler_of(ex), true);
  join_handle<T> h = future_access::make_join_handle(future_access::adopt<T>(s));
  boost::asio::co_spawn(ex, std::forward<Function>(f),
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
