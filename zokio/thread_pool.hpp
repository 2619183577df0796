// zokio/thread_pool.hpp: a fixed pool of threads running one zokio scheduler,
// with the interface of boost::asio::thread_pool.
#ifndef ZOKIO_THREAD_POOL_HPP
#define ZOKIO_THREAD_POOL_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/scheduler_executor.hpp>
#include <zokio/statistics.hpp>

#include <boost/asio/execution_context.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace zokio {

/// A work-stealing pool of threads, each with its own io_uring.
/**
 * zokio::thread_pool has the interface of boost::asio::thread_pool:
 * construct it with a number of threads, submit work through its executor
 * (boost::asio::post(pool, f), co_spawn, timers and sockets constructed on
 * it), and join() it. Its executor meets the same requirements as
 * zokio::io_context's, including zokio::priority classes.
 *
 * Each worker runs the same scheduler that io_context::run() runs: a ring
 * per worker (an operation is submitted on the ring of the worker that starts
 * it, and its completion is queued on that worker), a bounded local queue
 * and a LIFO slot per worker, a shared queue for work from outside, stealing
 * by idle workers (at most about half of them search at once) and parking in
 * the kernel with a wake-up only for a worker that really sleeps. See
 * zokio/detail/sched/scheduler.hpp for the protocol.
 *
 * Exceptions: a handler that throws does not end its worker. The first
 * exception is kept, the worker goes on running, and join() (or wait(), or
 * the destructor's join) rethrows it once the threads have finished. (Asio's
 * thread_pool lets it escape the thread, which terminates the program.)
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Safe, except that join() and wait() must not be called
 * concurrently with each other or from a worker.
 */
class alignas(16) thread_pool : public boost::asio::execution_context
{
public:
  /// Executor of a thread_pool (properties as io_context's executor).
  template <typename Allocator, std::uintptr_t Bits>
  using basic_executor_type = detail::scheduler_executor<thread_pool, Allocator, Bits>;

  /// Executor used to submit functions to a thread pool.
  using executor_type = basic_executor_type<std::allocator<void>, 0>;

  /// Constructs a pool with one thread per core
  /// (std::thread::hardware_concurrency(), at least one).
  thread_pool();

  /// Constructs a pool with the given number of threads (at least one).
  explicit thread_pool(std::size_t num_threads);

  /// Stops the threads, joins them, then destroys unfinished work (without
  /// invoking it). Does not throw: an exception kept from a handler is
  /// dropped if join() was not called.
  ~thread_pool();

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Obtains the executor associated with the pool.
  executor_type get_executor() noexcept { return executor_type(*this); }

  /// Obtains the executor associated with the pool.
  executor_type executor() noexcept { return executor_type(*this); }

  /// Stops the threads as soon as possible: queued work stays queued (it is
  /// destroyed with the pool). Posting after stop() is harmless.
  void stop();

  /// Lets the calling thread join the pool's workers until the pool stops or
  /// runs out of work (after join()).
  void attach();

  /// Waits until the pool has no work left (or stop() was called), then
  /// joins the threads. Rethrows the first exception a handler threw.
  void join();

  /// Same as join().
  void wait();

  /// Number of worker threads.
  std::size_t size() const noexcept { return threads_.size(); }

  /// Counters of the pool's work, summed over its workers.
  zokio::statistics statistics() const { return impl_.statistics(); }

  /// The backend the pool runs on (a zokio extension; zokio/backend.hpp).
  zokio::backend backend() const noexcept { return impl_.backend(); }

  /// (Internal) The scheduler the workers run.
  detail::scheduler& impl() noexcept { return impl_; }

private:
  void run_worker();
  void record(std::exception_ptr e);

  detail::scheduler& impl_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;                 // guards first_exception_ and joined_
  std::exception_ptr first_exception_;
  bool joined_ = false;
};

} // namespace zokio

#endif // ZOKIO_THREAD_POOL_HPP
