// zokio/timer/basic_waitable_timer.hpp: a timer on a zokio context, with the
// interface of boost::asio::basic_waitable_timer.
#ifndef ZOKIO_TIMER_BASIC_WAITABLE_TIMER_HPP
#define ZOKIO_TIMER_BASIC_WAITABLE_TIMER_HPP

#include <zokio/detail/handler_work.hpp>
#include <zokio/detail/io_scheduler.hpp>
#include <zokio/detail/timer/timer_service.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/wait_traits.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace zokio {

/// Provides waitable timer functionality on a zokio context.
/**
 * Same interface and semantics as boost::asio::basic_waitable_timer: a timer
 * is always in one of two states, "expired" or "not expired"; async_wait()
 * completes when the timer expires, with success, or when it is cancelled,
 * with boost::asio::error::operation_aborted. Waits never complete early, and
 * timers of one clock complete in order of expiry (waits on one timer in the
 * order they were started).
 *
 * Pending waits are kept in a user-space heap per context and clock, under a
 * single kernel timeout; arming a timer costs no system call.
 *
 * The executor must belong to a zokio context: an io_context or thread_pool
 * executor, a strand over one, or an any_io_executor holding any of these
 * (the executors zokio's sockets accept). Anything else
 * makes the constructor throw boost::system::system_error with
 * zokio::error::not_a_zokio_executor.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe, except that cancel() and cancel_one() may be
 * called from any thread while a wait is pending.
 */
template <typename Clock, typename WaitTraits = boost::asio::wait_traits<Clock>,
    typename Executor = boost::asio::any_io_executor>
class basic_waitable_timer
{
  using service_type = detail::timer_service<Clock, WaitTraits>;

public:
  /// The type of the executor associated with the object.
  using executor_type = Executor;

  /// Rebinds the timer type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_waitable_timer<Clock, WaitTraits, Executor1>;
  };

  using clock_type = Clock;
  using duration = typename clock_type::duration;
  using time_point = typename clock_type::time_point;
  using traits_type = WaitTraits;

  /// Constructs a timer without setting an expiry time.
  explicit basic_waitable_timer(const executor_type& ex)
    : service_(&service_for(ex)), executor_(ex)
  {
    service_->construct(impl_);
  }

  /// Constructs a timer on an execution context (normally a zokio::io_context).
  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_waitable_timer(ExecutionContext& context)
    : basic_waitable_timer(executor_type(context.get_executor()))
  {
  }

  /// Constructs a timer that expires at an absolute time.
  basic_waitable_timer(const executor_type& ex, const time_point& expiry_time)
    : basic_waitable_timer(ex)
  {
    service_->expires_at(impl_, expiry_time);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_waitable_timer(ExecutionContext& context, const time_point& expiry_time)
    : basic_waitable_timer(executor_type(context.get_executor()), expiry_time)
  {
  }

  /// Constructs a timer that expires after a duration from now.
  basic_waitable_timer(const executor_type& ex, const duration& expiry_time)
    : basic_waitable_timer(ex)
  {
    service_->expires_after(impl_, expiry_time);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_waitable_timer(ExecutionContext& context, const duration& expiry_time)
    : basic_waitable_timer(executor_type(context.get_executor()), expiry_time)
  {
  }

  /// Move-constructs a timer: pending waits follow it.
  basic_waitable_timer(basic_waitable_timer&& other)
    : service_(other.service_), executor_(other.executor_)
  {
    service_->construct(impl_);
    service_->move_construct(impl_, other.impl_);
  }

  /// Move-assigns a timer: waits pending on this one are cancelled first.
  basic_waitable_timer& operator=(basic_waitable_timer&& other)
  {
    if (this != &other)
    {
      service_->destroy(impl_);
      service_ = other.service_;
      executor_ = other.executor_;
      service_->construct(impl_);
      service_->move_construct(impl_, other.impl_);
    }
    return *this;
  }

  /// Move-constructs from a timer with another executor type.
  template <typename Executor1>
    requires std::is_convertible_v<Executor1, Executor>
  basic_waitable_timer(basic_waitable_timer<Clock, WaitTraits, Executor1>&& other)
    : service_(other.service_), executor_(other.executor_)
  {
    service_->construct(impl_);
    service_->move_construct(impl_, other.impl_);
  }

  basic_waitable_timer(const basic_waitable_timer&) = delete;
  basic_waitable_timer& operator=(const basic_waitable_timer&) = delete;

  /// Destroys the timer, cancelling its pending waits.
  ~basic_waitable_timer() { service_->destroy(impl_); }

  /// The executor associated with the object.
  executor_type get_executor() noexcept { return executor_; }

  /// Cancels every pending wait (each completes with operation_aborted).
  /// Returns how many were cancelled.
  std::size_t cancel() { return service_->cancel(impl_); }

  /// Cancels the oldest pending wait. Returns 0 or 1.
  std::size_t cancel_one() { return service_->cancel(impl_, 1); }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
  /// (Deprecated: use non-error_code overload.)
  std::size_t cancel(boost::system::error_code& ec)
  {
    ec = boost::system::error_code();
    return service_->cancel(impl_);
  }

  /// (Deprecated: use non-error_code overload.)
  std::size_t cancel_one(boost::system::error_code& ec)
  {
    ec = boost::system::error_code();
    return service_->cancel(impl_, 1);
  }

  /// (Deprecated: use expiry().)
  time_point expires_at() const { return impl_.expiry; }
#endif

  /// The expiry time as an absolute time.
  time_point expiry() const { return impl_.expiry; }

  /// Sets the expiry time, cancelling pending waits. Returns how many.
  std::size_t expires_at(const time_point& expiry_time)
  {
    return service_->expires_at(impl_, expiry_time);
  }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
  /// (Deprecated: use non-error_code overload.)
  std::size_t expires_at(const time_point& expiry_time, boost::system::error_code& ec)
  {
    ec = boost::system::error_code();
    return service_->expires_at(impl_, expiry_time);
  }
#endif

  /// Sets the expiry time relative to now, cancelling pending waits.
  /// Returns how many.
  std::size_t expires_after(const duration& expiry_time)
  {
    return service_->expires_after(impl_, expiry_time);
  }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
  /// (Deprecated: use expiry().) Time left before expiry.
  duration expires_from_now() const { return impl_.expiry - clock_type::now(); }

  /// (Deprecated: use expires_after().)
  std::size_t expires_from_now(const duration& expiry_time)
  {
    return service_->expires_after(impl_, expiry_time);
  }

  /// (Deprecated: use expires_after().)
  std::size_t expires_from_now(const duration& expiry_time, boost::system::error_code& ec)
  {
    ec = boost::system::error_code();
    return service_->expires_after(impl_, expiry_time);
  }
#endif

  /// Blocks the calling thread until the timer has expired.
  void wait()
  {
    boost::system::error_code ec;
    service_->wait(impl_, ec);
    boost::asio::detail::throw_error(ec, "wait");
  }

  /// Blocks the calling thread until the timer has expired.
  void wait(boost::system::error_code& ec) { service_->wait(impl_, ec); }

  /// Starts an asynchronous wait for the timer to expire.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code) @endcode
   * The handler is never invoked inside this function; it is invoked as if
   * by boost::asio::post() with its associated executor.
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation: the wait completes
   * with boost::asio::error::operation_aborted.
   */
  template <typename WaitToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(WaitToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WaitToken, void(boost::system::error_code)>(
        initiate_async_wait(this), token);
  }

private:
  template <typename, typename, typename> friend class basic_waitable_timer;

  static service_type& service_for(const executor_type& ex)
  {
    // A zokio executor, a strand over one, or a polymorphic executor holding
    // either (the same executors zokio's sockets accept).
    detail::scheduler& s = detail::io_scheduler_or_throw(ex, "zokio::basic_waitable_timer");
    return boost::asio::use_service<service_type>(s.context());
  }

  class initiate_async_wait
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_wait(basic_waitable_timer* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    // The scheduler that completes the wait (its service's), read without
    // copying the executor: zokio::use_future records it as the future's home.
    detail::scheduler& zokio_scheduler() const noexcept { return self_->service_->owner(); }

    template <typename WaitHandler>
    void operator()(WaitHandler&& handler) const
    {
      self_->service_->async_wait(self_->impl_, std::forward<WaitHandler>(handler),
          self_->executor_);
    }

  private:
    basic_waitable_timer* self_;
  };

  service_type* service_;
  typename service_type::implementation_type impl_;
  Executor executor_;
};

} // namespace zokio

#endif // ZOKIO_TIMER_BASIC_WAITABLE_TIMER_HPP
