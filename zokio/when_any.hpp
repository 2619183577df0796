// zokio/when_any.hpp: a future of whichever of several futures finishes
// first (when_any), and its coroutine-friendly form (select).
#ifndef ZOKIO_WHEN_ANY_HPP
#define ZOKIO_WHEN_ANY_HPP

#include <zokio/future.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <variant>

namespace zokio {

/// The value of a when_any future: which input finished first, and its
/// result.
/**
 * @c index is the position of that input among the arguments of when_any.
 * @c results holds one future per input; only the one at @c index is valid,
 * and it is ready: get<I>() (or <tt>std::get<I>(results).get()</tt>) returns
 * its value or throws its failure without blocking.
 */
template <typename... T>
struct when_any_result
{
  /// The position of the input that finished first.
  std::size_t index = 0;

  /// The inputs' futures; only the one at @c index is valid (and ready).
  std::tuple<future<T>...> results;

  /// The result of input @c I, which must be @c index: its value, or its
  /// failure thrown (consumes it).
  template <std::size_t I>
  std::tuple_element_t<I, std::tuple<T...>> get()
  {
    return std::get<I>(results).get();
  }
};

/// Waits for the first of several futures to finish.
/**
 * @param futures The inputs, consumed. An empty (invalid) input finishes at
 * once, failed with std::future_error (no_state).
 *
 * @returns A future of <tt>when_any_result<T...></tt>. It never fails itself:
 * the first input to finish wins, whether it succeeded or failed, and its
 * outcome is carried in the result. The other inputs are cancelled, and the
 * returned future is ready once they have all finished too (so that nothing
 * they use is still in flight), their results discarded.
 *
 * @par Per-Operation Cancellation
 * cancel() on the returned future (or destroying it unfinished) cancels
 * every input; the first of them to finish is still reported.
 *
 * @par Thread Safety
 * As for when_all().
 */
template <typename... T>
future<when_any_result<T...>> when_any(future<T>... futures);

/// The value type of @c select(future<T>...): the winner's value, at the
/// winner's position, with @c std::monostate standing for @c void.
template <typename... T>
using select_result = std::variant<std::conditional_t<std::is_void_v<T>, std::monostate, T>...>;

/// Waits for the first of several futures to finish and yields its value,
/// in a form that reads well in coroutines.
/**
 * @code
 * auto r = co_await zokio::select(sock.async_read_some(buf, zokio::use_future),
 *                                 stop.async_wait(zokio::use_future));
 * if (r.index() == 0)
 *   consume(std::get<0>(r));
 * @endcode
 *
 * @returns A future of <tt>select_result<T...></tt>, a std::variant whose
 * active alternative is that of the first input to finish. If that input
 * failed, the returned future fails the same way (the exception is thrown by
 * co_await / get()). As with when_any(), the other inputs are cancelled and
 * the future is ready once they have finished.
 *
 * @par Per-Operation Cancellation
 * As for when_any(); if the first input to finish was cancelled, its
 * error (typically boost::asio::error::operation_aborted) is thrown.
 *
 * @par Thread Safety
 * As for when_all().
 */
template <typename... T>
future<select_result<T...>> select(future<T>... futures);

} // namespace zokio

#include <zokio/impl/when_any.hpp>

#endif // ZOKIO_WHEN_ANY_HPP
