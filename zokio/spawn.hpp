// zokio/spawn.hpp: running a coroutine as a task whose result is a future.
#ifndef ZOKIO_SPAWN_HPP
#define ZOKIO_SPAWN_HPP

#include <zokio/future.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/is_executor.hpp>

#include <type_traits>

namespace zokio {

/// The future of a coroutine started with zokio::spawn.
/**
 * A join_handle is a zokio::future of the coroutine's result (an exception
 * that escapes the coroutine is thrown by get() and co_await), with one
 * more operation, abort(), and one difference: destroying a join_handle
 * detaches the coroutine, which runs on to completion unobserved, instead of
 * cancelling it. A join_handle converts (by move) to a plain future<T>, for
 * the combinators; that future cancels the coroutine if destroyed
 * unfinished.
 *
 * @par Thread Safety
 * As for zokio::future. abort() may be called from any thread: the
 * cancellation is carried to the coroutine's executor and emitted there.
 */
template <typename T>
class join_handle : public future<T>
{
public:
  /// Constructs an empty handle.
  join_handle() noexcept = default;

  /// Takes over another handle.
  join_handle(join_handle&&) noexcept = default;

  /// Detaches the coroutine this handle refers to, if any, and takes over
  /// other's.
  join_handle& operator=(join_handle&& other) noexcept
  {
    if (this != &other)
    {
      this->detach();
      future<T>::operator=(std::move(other));
    }
    return *this;
  }

  /// Detaches the coroutine: it runs on, and its result is discarded.
  ~join_handle() { this->detach(); }

  /// Cancels the coroutine at its next suspension point.
  /**
   * Emits a terminal cancellation on the coroutine's cancellation slot: the
   * operation it awaits, if it supports cancellation, completes with
   * boost::asio::error::operation_aborted, and (unless the coroutine has
   * disabled it with boost::asio::this_coro::throw_if_cancelled) its next
   * co_await throws that error. The coroutine may catch it and finish
   * normally; the handle then holds whatever it returns. No effect once the
   * coroutine has finished.
   */
  void abort() noexcept { this->cancel(boost::asio::cancellation_type::terminal); }

private:
  friend struct detail::future_access;

  explicit join_handle(future<T>&& f) noexcept : future<T>(std::move(f)) {}
};

/// Starts a coroutine on an executor and returns its join_handle.
/**
 * @param ex The executor the coroutine runs on: a zokio executor (or an
 * any_io_executor holding one), or any other Asio executor.
 * @param a The coroutine, as returned by calling a coroutine function.
 *
 * The coroutine starts as with boost::asio::co_spawn (dispatched to @c ex,
 * never inside this call when @c ex belongs to a context that the calling
 * thread is not running). Its result, or the exception that escapes it,
 * fills the returned handle. @c T must be default-constructible (as for
 * co_spawn).
 *
 * On a zokio::thread_pool executor (when the coroutine's executor type can
 * hold a strand, as any_io_executor can) the coroutine runs on a new strand
 * of the pool: its resumptions never overlap, and abort() reaches it through
 * the strand. A cancellation requested before the coroutine's body has
 * started keeps the body from running: the handle then fails with
 * boost::asio::error::operation_aborted.
 */
template <typename Executor, typename T, typename AwaitableExecutor>
  requires (boost::asio::execution::is_executor<Executor>::value
      || boost::asio::is_executor<Executor>::value)
    && std::is_convertible_v<Executor, AwaitableExecutor>
join_handle<T> spawn(const Executor& ex, boost::asio::awaitable<T, AwaitableExecutor> a);

/// Starts a coroutine (or a function object that makes one) on an
/// execution context, normally a zokio::io_context: the same as
/// <tt>spawn(ctx.get_executor(), std::forward<A>(a))</tt>.
template <typename ExecutionContext, typename A>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
auto spawn(ExecutionContext& ctx, A&& a);

/// Starts a coroutine made by calling a function object (called on the
/// executor, so that captured state lives in the coroutine frame only once
/// it runs there), as co_spawn(ex, f, token) does.
template <typename Executor, typename F>
  requires ((boost::asio::execution::is_executor<Executor>::value
      || boost::asio::is_executor<Executor>::value)
    && requires(F f) { std::declval<std::decay_t<F>&>()(); })
auto spawn(const Executor& ex, F&& f);

} // namespace zokio

#include <zokio/impl/spawn.hpp>

#endif // ZOKIO_SPAWN_HPP
