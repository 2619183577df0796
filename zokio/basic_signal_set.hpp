// zokio/basic_signal_set.hpp: waiting for POSIX signals on a zokio context,
// with the interface of boost::asio::basic_signal_set (Boost 1.81).
#ifndef ZOKIO_BASIC_SIGNAL_SET_HPP
#define ZOKIO_BASIC_SIGNAL_SET_HPP

#include <zokio/detail/io_scheduler.hpp>
#include <zokio/detail/signal/signal_service.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/execution_context.hpp>

#include <type_traits>
#include <utility>

namespace zokio {

/// A set of signals to wait for.
/**
 * As boost::asio::signal_set: add() registers a signal number with the
 * set, async_wait() completes with the number of the next signal raised
 * (void(boost::system::error_code, int)). A signal raised while the set has
 * no wait pending is kept (counted per number) and completes the next
 * async_wait at once. Every set of the process that holds a number sees
 * each signal of that number, whatever its context.
 *
 * The signals arrive through a self-pipe that a read on the context's own
 * ring (or epoll / kqueue set) watches: no reactor of Asio's, no thread.
 * The handler zokio installs (SA_RESTART) calls the handler that was there
 * before it, if that was a function, so another library's handler keeps
 * working; when the last set of the process removes a number, the action
 * that was there before comes back. A number that cannot be caught
 * (SIGKILL, SIGSTOP) makes add() fail with invalid_argument; one out of
 * range too.
 *
 * Destroying or cancelling the set completes its waits with
 * boost::asio::error::operation_aborted. A set may be destroyed after its
 * context (the context's destruction removes its signals and destroys its
 * waits); nothing else may be called on it then.
 *
 * @par Per-Operation Cancellation
 * async_wait supports terminal, partial and total cancellation.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe.
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_signal_set
{
  using service_type = detail::signal_service;

public:
  using executor_type = Executor;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_signal_set<Executor1>;
  };

  explicit basic_signal_set(const executor_type& ex)
    : service_(&service_for(ex)), state_(service_->create()), executor_(ex)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_signal_set(ExecutionContext& context)
    : basic_signal_set(executor_type(context.get_executor()))
  {
  }

  basic_signal_set(const executor_type& ex, int signal_number_1) : basic_signal_set(ex)
  {
    add(signal_number_1);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_signal_set(ExecutionContext& context, int signal_number_1)
    : basic_signal_set(executor_type(context.get_executor()), signal_number_1)
  {
  }

  basic_signal_set(const executor_type& ex, int signal_number_1, int signal_number_2)
    : basic_signal_set(ex)
  {
    add(signal_number_1);
    add(signal_number_2);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_signal_set(ExecutionContext& context, int signal_number_1, int signal_number_2)
    : basic_signal_set(executor_type(context.get_executor()), signal_number_1, signal_number_2)
  {
  }

  basic_signal_set(const executor_type& ex, int signal_number_1, int signal_number_2,
      int signal_number_3)
    : basic_signal_set(ex)
  {
    add(signal_number_1);
    add(signal_number_2);
    add(signal_number_3);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_signal_set(ExecutionContext& context, int signal_number_1, int signal_number_2,
      int signal_number_3)
    : basic_signal_set(executor_type(context.get_executor()), signal_number_1, signal_number_2,
          signal_number_3)
  {
  }

  /// Removes the set's signals; pending waits complete with operation_aborted.
  ~basic_signal_set() { service_type::destroy(service_, state_); }

  basic_signal_set(const basic_signal_set&) = delete;
  basic_signal_set& operator=(const basic_signal_set&) = delete;

  const executor_type& get_executor() noexcept { return executor_; }

  /// Adds a signal number (adding one the set has is a no-op).
  void add(int signal_number)
  {
    boost::system::error_code ec;
    add(signal_number, ec);
    boost::asio::detail::throw_error(ec, "add");
  }

  void add(int signal_number, boost::system::error_code& ec)
  {
    service_->add(state_, signal_number, ec);
  }

  /// Removes a signal number, and the signals of that number the set kept.
  void remove(int signal_number)
  {
    boost::system::error_code ec;
    remove(signal_number, ec);
    boost::asio::detail::throw_error(ec, "remove");
  }

  void remove(int signal_number, boost::system::error_code& ec)
  {
    service_->remove(state_, signal_number, ec);
  }

  /// Removes every signal number.
  void clear()
  {
    boost::system::error_code ec;
    clear(ec);
    boost::asio::detail::throw_error(ec, "clear");
  }

  void clear(boost::system::error_code& ec) { service_->clear(state_, ec); }

  /// Completes every pending wait with operation_aborted.
  void cancel()
  {
    boost::system::error_code ec;
    cancel(ec);
    boost::asio::detail::throw_error(ec, "cancel");
  }

  void cancel(boost::system::error_code& ec) { service_->cancel(state_, ec); }

  /// Waits for a signal of the set.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, int signal_number) @endcode
   */
  template <typename SignalToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(SignalToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<SignalToken, void(boost::system::error_code, int)>(
        initiate_async_wait(this), token);
  }

private:
  static service_type& service_for(const executor_type& ex)
  {
    detail::scheduler& s = detail::io_scheduler_or_throw(ex, "zokio::basic_signal_set");
    return boost::asio::use_service<service_type>(s.context());
  }

  class initiate_async_wait
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_wait(basic_signal_set* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename Handler>
    void operator()(Handler&& handler) const
    {
      std::decay_t<Handler> h(std::forward<Handler>(handler));
      self_->service_->async_wait(self_->state_, h, self_->executor_);
    }

  private:
    basic_signal_set* self_;
  };

  service_type* service_;
  service_type::set_state* state_;
  Executor executor_;
};

} // namespace zokio

#endif // ZOKIO_BASIC_SIGNAL_SET_HPP
