// zokio/future.hpp: zokio::future<T> and the use_future completion token.
#ifndef ZOKIO_FUTURE_HPP
#define ZOKIO_FUTURE_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/future/continuation.hpp>
#include <zokio/detail/future/future_handler.hpp>
#include <zokio/detail/future/shared_state.hpp>
#include <zokio/error.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <exception>
#include <memory>

namespace zokio {

/// The result of an asynchronous operation, delivered once.
/**
 * A future is returned by an asynchronous operation started with the
 * zokio::use_future completion token, by zokio::spawn (as a join_handle), and
 * by the combinators when_all, when_any, select and timeout. Its shared state
 * is filled directly by the operation's completion, without a lock; whoever
 * waits is then woken directly: a coroutine that awaits it is resumed from
 * the completion itself when it runs on the same context.
 *
 * The value type follows Asio's use_future and use_awaitable: for a
 * completion signature <tt>void(error_code, Args...)</tt> (or with
 * <tt>std::exception_ptr</tt> first, or neither) @c T is @c void for no
 * @c Args, the single argument's type for one, and <tt>std::tuple<Args...></tt>
 * for several. A non-zero error_code becomes a boost::system::system_error,
 * and an exception_ptr its exception, thrown by get() and by @c co_await.
 * Wrap the token in boost::asio::as_tuple to receive the error code as a
 * value instead.
 *
 * A future is move-only and one-shot: get(), then() and @c co_await consume
 * it (valid() is false afterwards).
 *
 * @par Waiting
 * @li <tt>co_await f</tt> in a boost::asio::awaitable coroutine (including
 * those started by zokio::spawn) suspends until the result is there, then
 * returns it or throws its error.
 * @li get() blocks a thread that does not run the producing context.
 * @li then() hands the result to any completion token.
 * @li ready() polls.
 *
 * @par Cancellation
 * cancel(), or destroying a future that is not ready, emits a cancellation
 * on the operation's cancellation slot (per-operation cancellation). The
 * operation then completes early (typically with
 * boost::asio::error::operation_aborted), or normally if it was too late or
 * does not support cancellation. Either way its resources (operation object,
 * buffers in the kernel) are released only when its completion has been
 * reaped, not when the future goes away. An awaiting coroutine that is
 * cancelled (for example through zokio::join_handle::abort()) cancels the
 * future it awaits.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe, except that the operation may complete on
 * any thread while the future is polled, waited on or cancelled on another.
 * A cancellation requested from a thread that does not run the producing
 * context is carried to that context and emitted there.
 */
template <typename T>
class [[nodiscard]] future
{
public:
  /// The type get() returns.
  using value_type = T;

  /// Constructs an empty future (valid() is false).
  future() noexcept = default;

  /// Takes over the state of another future, which becomes empty.
  future(future&& other) noexcept;

  /// Drops this future's state (cancelling its operation if unfinished) and
  /// takes over other's.
  future& operator=(future&& other) noexcept;

  future(const future&) = delete;
  future& operator=(const future&) = delete;

  /// Destroys the future, cancelling the operation if it is unfinished.
  ~future();

  /// Whether the future refers to a state (not default-constructed, moved
  /// from or consumed).
  bool valid() const noexcept { return state_ != nullptr; }

  /// Whether the result is there: get() would not block. False for an
  /// empty future.
  bool ready() const noexcept;

  /// Blocks until the result is there, without consuming it.
  /**
   * @throws boost::system::system_error with zokio::error::would_deadlock,
   * at once, if the result is not there and the calling thread runs the
   * context that would have to produce it.
   * @throws std::future_error (no_state) if the future is empty.
   */
  void wait();

  /// Waits for the result and returns it, consuming the future.
  /**
   * Throws the operation's failure: boost::system::system_error for an
   * error code, or the stored exception. Blocks the calling thread if the
   * result is not there yet.
   *
   * @throws boost::system::system_error with zokio::error::would_deadlock,
   * at once, if the result is not there and the calling thread runs the
   * context that would have to produce it (blocking would stop that context
   * forever).
   * @throws std::future_error (no_state) if the future is empty.
   */
  T get();

  /// Requests cancellation of the operation, if it has not finished.
  /**
   * @param type The cancellation type emitted on the operation's
   * cancellation slot.
   *
   * Has no effect on an empty or ready future, and none after the first
   * call. Does not consume the future: get() then returns the operation's
   * outcome (typically the error boost::asio::error::operation_aborted).
   */
  void cancel(boost::asio::cancellation_type_t type
      = boost::asio::cancellation_type::terminal) noexcept;

  /// Hands the result to a completion token, consuming the future.
  /**
   * @param token The completion token. The completion signature is
   * @code void(std::exception_ptr) @endcode for @c future<void> and
   * @code void(std::exception_ptr, T) @endcode otherwise (with a
   * default-constructed @c T when there is an exception), as for
   * boost::asio::co_spawn: a handler, zokio::use_future,
   * boost::asio::use_awaitable, boost::asio::deferred, ...
   *
   * The handler runs on its associated executor, which defaults to the
   * executor of the context that produces the result (or, if that is not
   * known, of the context the calling thread runs, else the system
   * executor): directly from the completion when that executor allows it,
   * never inside then() itself. While it waits, the handler keeps its
   * executor's context from running out of work.
   *
   * @par Per-Operation Cancellation
   * A cancellation emitted on the handler's associated cancellation slot
   * is forwarded to cancel().
   */
  template <typename CompletionToken>
    requires boost::asio::completion_token_for<CompletionToken,
        typename detail::then_signature<T>::type>
  auto then(CompletionToken&& token);

  /// The future as an Asio asynchronous operation, consuming it.
  /**
   * Completes with @code void(zokio::future<T>) @endcode, the same future,
   * now ready. This is what @c co_await uses in boost::asio::awaitable
   * coroutines, where it yields get(); handler placement and cancellation
   * are as for then().
   */
  template <typename CompletionToken>
    requires boost::asio::completion_token_for<CompletionToken, void(future<T>)>
  auto operator()(CompletionToken&& token);

protected:
  // Releases the state without cancelling (join_handle detaches).
  void detach() noexcept;

private:
  friend struct detail::future_access;

  explicit future(detail::future_state<T>* s) noexcept : state_(s) {}

  void require_state() const;

  detail::future_state<T>* state_ = nullptr;
};

/// Completion token type that makes an asynchronous operation return a
/// zokio::future.
/**
 * @code zokio::future<void> f = timer.async_wait(zokio::use_future);
 * zokio::future<std::size_t> n = sock.async_read_some(buf, zokio::use_future); @endcode
 *
 * Works with every zokio and Asio asynchronous operation. The operation's
 * handler exposes a cancellation slot (used by future::cancel()) and the
 * token's allocator, from which the future's shared state is allocated too.
 * With the default allocator, both come from per-thread recycling caches:
 * a steady stream of operations allocates nothing.
 */
template <typename Allocator = std::allocator<void>>
class use_future_t
{
public:
  /// The allocator type used for the operation and the shared state.
  using allocator_type = Allocator;

  /// Constructs a token with a default-constructed allocator.
  constexpr use_future_t() = default;

  /// Constructs a token with the specified allocator.
  explicit use_future_t(const Allocator& allocator) : allocator_(allocator) {}

  /// A token of the same kind with another allocator.
  template <typename OtherAllocator>
  use_future_t<OtherAllocator> rebind(const OtherAllocator& allocator) const
  {
    return use_future_t<OtherAllocator>(allocator);
  }

  /// The token's allocator.
  allocator_type get_allocator() const { return allocator_; }

private:
  [[no_unique_address]] Allocator allocator_{};
};

/// A completion token object that makes an operation return a zokio::future.
inline constexpr use_future_t<> use_future;

} // namespace zokio

#include <zokio/impl/future.hpp>

#endif // ZOKIO_FUTURE_HPP
