// zokio/timeout.hpp: a future that fails with timed_out if another is not
// ready in time.
#ifndef ZOKIO_TIMEOUT_HPP
#define ZOKIO_TIMEOUT_HPP

#include <zokio/future.hpp>

#include <chrono>

namespace zokio {

/// Bounds the time a future may take.
/**
 * @param f The future, consumed.
 * @param duration How long to wait, from now.
 *
 * @returns A future of the same type: f's result if f finishes first (or
 * succeeds even though the time ran out before its operation noticed the
 * cancellation: a completed read is never lost); otherwise, once f's
 * operation has been cancelled and has finished, the error
 * boost::asio::error::timed_out (thrown as boost::system::system_error by
 * get() and co_await). If f fails on its own before the time runs out, its
 * failure is kept.
 *
 * The deadline is a zokio::steady_timer wait on the context that produces f
 * (the one its operation was started on, or failing that the context the
 * calling thread runs). If f is already ready, it is returned as is.
 *
 * @throws boost::system::system_error with zokio::error::not_a_zokio_executor
 * if no zokio context is known for f; use the overload taking an executor.
 *
 * @par Per-Operation Cancellation
 * cancel() on the returned future cancels f and the deadline.
 *
 * @par Thread Safety
 * f may complete on any thread; the returned future completes on the thread
 * that completes f. The deadline's timer is destroyed on its context as soon
 * as its wait has finished, so the returned future may outlive the context.
 *
 * Composes with the other combinators: <tt>timeout(when_all(a, b), 1s)</tt>,
 * <tt>when_any(timeout(a, 1s), timeout(b, 2s))</tt>.
 */
template <typename T, typename Rep, typename Period>
future<T> timeout(future<T> f, std::chrono::duration<Rep, Period> duration);

/// Bounds the time a future may take, with the deadline on a given
/// executor (which must belong to a zokio context).
template <typename Executor, typename T, typename Rep, typename Period>
future<T> timeout(const Executor& ex, future<T> f, std::chrono::duration<Rep, Period> duration);

} // namespace zokio

#include <zokio/impl/timeout.hpp>

#endif // ZOKIO_TIMEOUT_HPP
