// zokio/io_context.hpp: an Asio execution context that runs on io_uring
// (epoll where io_uring is refused, kqueue on the BSDs and macOS).
#ifndef ZOKIO_IO_CONTEXT_HPP
#define ZOKIO_IO_CONTEXT_HPP

#include <zokio/backend.hpp>
#include <zokio/detail/config.hpp>
#include <zokio/detail/driver_sizes.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/scheduler_executor.hpp>
#include <zokio/detail/service_index.hpp>
#include <zokio/statistics.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace zokio {

/// Sizes of the driver a context creates for each thread that runs it: the
/// io_uring instance's queues (sq_entries, cq_entries), or, on a readiness
/// backend, the events taken per wait (sq_entries). Zero means the default.
using ring_options = detail::driver_sizes;

/// Provides core I/O functionality on io_uring (or epoll, or kqueue), as a
/// drop-in replacement for boost::asio::io_context.
/**
 * zokio::io_context has the interface of boost::asio::io_context: the same
 * constructors, run functions, executor, nested types and deprecated members,
 * so that code written for Asio's io_context compiles unchanged with this
 * type. Handlers are queued and run by the threads that call run(); each such
 * thread owns a driver for the process's backend (zokio/backend.hpp): an
 * io_uring instance on which it submits the operations it starts, in
 * batches, and from which it harvests completions; or, where io_uring is
 * refused, an epoll (kqueue) instance. The driver is created the first time
 * the thread runs the context and kept until the context is destroyed.
 *
 * The first context of the process chooses the backend. Construction
 * creates the calling thread's driver and fails with
 * boost::system::system_error only where no backend can be used, or where
 * ZOKIO_BACKEND forces one that cannot (zokio::error::io_uring_unavailable,
 * zokio::error::backend_unavailable, naming the reason).
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Safe, with the exception that calling restart() while
 * there are unfinished run(), run_one(), run_for(), run_until(), poll() or
 * poll_one() calls results in undefined behaviour.
 *
 * @par Scheduling (as of this version)
 * A thread inside run() runs up to 64 ready handlers, then takes up to 128
 * handlers posted from other threads, fires expired timers, submits all
 * queued requests (io_uring: with one system call) and reaps all completions
 * in one pass. Handlers posted from a handler run on the same thread, in
 * FIFO order; each running thread has its own queue, and an idle thread
 * steals half of a busy one's. A kernel operation completes on the thread
 * that started it.
 */
class alignas(16) io_context : public boost::asio::execution_context
{
public:
  /// Executor of an io_context, with the properties of
  /// boost::asio::io_context::basic_executor_type (see
  /// zokio/detail/scheduler_executor.hpp) and a zokio::priority class.
  template <typename Allocator, std::uintptr_t Bits>
  using basic_executor_type = detail::scheduler_executor<io_context, Allocator, Bits>;

  /// Executor used to submit functions to an io_context.
  using executor_type = basic_executor_type<std::allocator<void>, 0>;

  class work;
  friend class work;

  class service;

  class strand;

  /// The type used to count the number of handler executions.
  using count_type = std::size_t;

  /// Constructor.
  io_context();

  /// Constructor with a hint about the number of threads that will run it.
  /**
   * The hint is kept for compatibility and reported by concurrency_hint();
   * as of this version the scheduler behaves the same for every value.
   */
  explicit io_context(int concurrency_hint);

  /// Constructor with explicit ring sizes (a zokio extension).
  io_context(int concurrency_hint, const ring_options& rings);

  /// Destructor: shuts down every service, destroying (without invoking)
  /// the handlers of unfinished operations.
  ~io_context();

  io_context(const io_context&) = delete;
  io_context& operator=(const io_context&) = delete;

  /// Obtains the executor associated with the io_context.
  executor_type get_executor() noexcept;

  /// Runs the event processing loop until the io_context has no more work
  /// or is stopped. Returns the number of handlers that were executed.
  count_type run();

  /// Runs the loop for at most the specified duration.
  template <typename Rep, typename Period>
  std::size_t run_for(const std::chrono::duration<Rep, Period>& rel_time);

  /// Runs the loop until the specified time at the latest.
  template <typename Clock, typename Duration>
  std::size_t run_until(const std::chrono::time_point<Clock, Duration>& abs_time);

  /// Runs at most one handler, blocking until one is ready or the io_context
  /// runs out of work or is stopped.
  count_type run_one();

  /// Runs at most one handler, blocking for at most the specified duration.
  template <typename Rep, typename Period>
  std::size_t run_one_for(const std::chrono::duration<Rep, Period>& rel_time);

  /// Runs at most one handler, blocking until the specified time at the latest.
  template <typename Clock, typename Duration>
  std::size_t run_one_until(const std::chrono::time_point<Clock, Duration>& abs_time);

  /// Runs the handlers that are ready, without blocking.
  count_type poll();

  /// Runs at most one ready handler, without blocking.
  count_type poll_one();

  /// Stops the loop: run functions return as soon as possible.
  void stop();

  /// Whether the io_context has been stopped.
  bool stopped() const;

  /// Prepares a stopped io_context to be run again.
  void restart();

  /// The concurrency hint given at construction.
  int concurrency_hint() const noexcept;

  /// Counters of the context's work (a zokio extension).
  zokio::statistics statistics() const;

  /// The backend the context runs on (a zokio extension; zokio/backend.hpp,
  /// current_backend() says why).
  zokio::backend backend() const noexcept { return impl_.backend(); }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
  /// (Deprecated: use non-error_code overload.) Runs the loop.
  count_type run(boost::system::error_code& ec);

  /// (Deprecated: use non-error_code overload.) Runs at most one handler.
  count_type run_one(boost::system::error_code& ec);

  /// (Deprecated: use non-error_code overload.) Runs ready handlers.
  count_type poll(boost::system::error_code& ec);

  /// (Deprecated: use non-error_code overload.) Runs at most one ready handler.
  count_type poll_one(boost::system::error_code& ec);

  /// (Deprecated: use restart().)
  void reset();

  /// (Deprecated: use boost::asio::dispatch().) Requests the io_context to
  /// invoke the handler, in this thread if it is running the io_context.
  template <typename LegacyCompletionHandler>
  auto dispatch(LegacyCompletionHandler&& handler);

  /// (Deprecated: use boost::asio::post().) Requests the io_context to invoke
  /// the handler and returns immediately.
  template <typename LegacyCompletionHandler>
  auto post(LegacyCompletionHandler&& handler);

  /// (Deprecated: use boost::asio::bind_executor().) Creates a handler that
  /// dispatches the wrapped handler on this io_context.
  template <typename Handler>
  auto wrap(Handler handler);
#endif // !defined(BOOST_ASIO_NO_DEPRECATED)

  /// (Internal) The scheduler that implements this context.
  detail::scheduler& impl() noexcept { return impl_; }

  /// (Internal) Implementation of boost::asio::use_service for services
  /// derived from io_context::service.
  template <typename Service>
  Service& use_zokio_service();

  /// (Internal) Implementation of boost::asio::add_service.
  template <typename Service>
  void add_zokio_service(Service* svc);

private:
  struct initiate_dispatch;
  struct initiate_post;

  static detail::scheduler& add_impl(io_context& self, int hint, const ring_options& rings);

  // Services whose constructor takes zokio::io_context& (service_index.hpp);
  // registered first, so it outlives every other service.
  detail::service_index& services_;

  detail::scheduler& impl_;
};

#if !defined(BOOST_ASIO_NO_DEPRECATED)
/// (Deprecated: use executor_work_guard.) Informs the io_context when it has
/// work to do.
class io_context::work
{
public:
  explicit work(io_context& ctx) : ctx_(ctx) { ctx_.impl_.work_started(); }
  work(const work& other) : ctx_(other.ctx_) { ctx_.impl_.work_started(); }
  ~work() { ctx_.impl_.work_finished(); }
  work& operator=(const work&) = delete;

  io_context& get_io_context() { return ctx_; }

private:
  io_context& ctx_;
};
#endif // !defined(BOOST_ASIO_NO_DEPRECATED)

/// Base class for services of a zokio::io_context (as io_context::service).
/**
 * A user-defined service derives from this class, declares
 * `static zokio::io_context::id id;` and takes `zokio::io_context&` in its
 * constructor; boost::asio::use_service<S>(ctx) then creates it on first use.
 */
class io_context::service : public boost::asio::execution_context::service
{
public:
  /// The io_context that owns the service.
  io_context& get_io_context() { return static_cast<io_context&>(context()); }

private:
  void shutdown() override;
#if !defined(BOOST_ASIO_NO_DEPRECATED)
  virtual void shutdown_service();
#endif
  void notify_fork(boost::asio::execution_context::fork_event event) override;
#if !defined(BOOST_ASIO_NO_DEPRECATED)
  virtual void fork_service(boost::asio::execution_context::fork_event event);
#endif

protected:
  explicit service(io_context& owner);
  ~service() override;
};

/// (Deprecated: use make_strand().) Serialises handlers on an io_context.
/**
 * Built on boost::asio::strand over the io_context's executor; provides the
 * interface of boost::asio::io_context::strand.
 */
class io_context::strand
{
public:
  explicit strand(io_context& ctx) : impl_(ctx.get_executor()) {}

  io_context& context() const noexcept { return impl_.get_inner_executor().context(); }

  void on_work_started() const noexcept { impl_.on_work_started(); }
  void on_work_finished() const noexcept { impl_.on_work_finished(); }

  template <typename Function, typename Allocator>
  void dispatch(Function&& f, const Allocator& a) const
  {
    impl_.dispatch(std::forward<Function>(f), a);
  }

  template <typename Function, typename Allocator>
  void post(Function&& f, const Allocator& a) const
  {
    impl_.post(std::forward<Function>(f), a);
  }

  template <typename Function, typename Allocator>
  void defer(Function&& f, const Allocator& a) const
  {
    impl_.defer(std::forward<Function>(f), a);
  }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
  /// (Deprecated: use boost::asio::dispatch().)
  template <typename LegacyCompletionHandler>
  auto dispatch(LegacyCompletionHandler&& handler)
  {
    return boost::asio::async_initiate<LegacyCompletionHandler, void()>(
        [](auto h, const strand* self) {
          boost::asio::dispatch(self->impl_, std::move(h));
        }, handler, this);
  }

  /// (Deprecated: use boost::asio::post().)
  template <typename LegacyCompletionHandler>
  auto post(LegacyCompletionHandler&& handler)
  {
    return boost::asio::async_initiate<LegacyCompletionHandler, void()>(
        [](auto h, const strand* self) {
          boost::asio::post(self->impl_, std::move(h));
        }, handler, this);
  }

  /// (Deprecated: use boost::asio::bind_executor().)
  template <typename Handler>
  auto wrap(Handler handler);
#endif // !defined(BOOST_ASIO_NO_DEPRECATED)

  bool running_in_this_thread() const noexcept { return impl_.running_in_this_thread(); }

  friend bool operator==(const strand& a, const strand& b) noexcept { return a.impl_ == b.impl_; }
  friend bool operator!=(const strand& a, const strand& b) noexcept { return a.impl_ != b.impl_; }

private:
  boost::asio::strand<io_context::executor_type> impl_;
};

} // namespace zokio

namespace boost {
namespace asio {

/// use_service for zokio::io_context: creates services whose constructor
/// takes zokio::io_context& (io_context::service subclasses), and returns the
/// usual service for those constructible from an execution_context&.
template <typename Service>
Service& use_service(zokio::io_context& ctx)
{
  return ctx.template use_zokio_service<Service>();
}

/// add_service for zokio::io_context: as Asio's (service_already_exists,
/// invalid_service_owner), and use_service then returns svc.
template <typename Service>
void add_service(zokio::io_context& ctx, Service* svc)
{
  ctx.template add_zokio_service<Service>(svc);
}

} // namespace asio
} // namespace boost

#include <zokio/impl/io_context.hpp>

#endif // ZOKIO_IO_CONTEXT_HPP
