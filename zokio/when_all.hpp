// zokio/when_all.hpp: a future of the results of several futures.
#ifndef ZOKIO_WHEN_ALL_HPP
#define ZOKIO_WHEN_ALL_HPP

#include <zokio/future.hpp>

#include <tuple>
#include <type_traits>
#include <variant>

namespace zokio {

/// The value type of @c when_all(future<T>...): one element per input, with
/// @c std::monostate standing for a @c void result.
template <typename... T>
using when_all_result = std::tuple<std::conditional_t<std::is_void_v<T>, std::monostate, T>...>;

/// Waits for every input future; its future holds all their results.
/**
 * @param futures The inputs, consumed. An empty (invalid) input counts as one
 * that failed with std::future_error (no_state).
 *
 * @returns A future of <tt>when_all_result<T...></tt> (a tuple with one
 * element per input, in the order given). The returned future is ready once
 * every input has finished.
 *
 * Failure: when an input fails, the others are cancelled; once they have all
 * finished, the returned future fails with the first failure that occurred
 * (by time of completion), and the other results are discarded.
 *
 * @par Per-Operation Cancellation
 * cancel() on the returned future (or destroying it unfinished) cancels
 * every input.
 *
 * @par Thread Safety
 * The inputs may complete on any threads; the returned future completes on
 * the thread that completes the last of them, and a waiting coroutine is
 * resumed from there when allowed (see zokio::future).
 */
template <typename... T>
future<when_all_result<T...>> when_all(future<T>... futures);

} // namespace zokio

#include <zokio/impl/when_all.hpp>

#endif // ZOKIO_WHEN_ALL_HPP
