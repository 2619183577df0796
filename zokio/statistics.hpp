// zokio/statistics.hpp: counters a zokio context keeps about its own work.
#ifndef ZOKIO_STATISTICS_HPP
#define ZOKIO_STATISTICS_HPP

#include <zokio/backend.hpp>

#include <cstdint>

namespace zokio {

/// A snapshot of a context's counters, summed over the threads that run it.
/**
 * Counters only grow. Each thread updates its own with relaxed stores, so a
 * snapshot taken while the context runs is approximate (each field is exact,
 * fields are not taken at the same instant).
 */
struct statistics
{
  /// The backend the context runs on (zokio/backend.hpp).
  zokio::backend backend = zokio::backend::io_uring;

  /// Requests handed to the kernel (io_uring: SQEs; readiness backends:
  /// operations started, each of which makes at least one system call).
  std::uint64_t submissions = 0;

  /// System calls into the kernel for submitting, harvesting or sleeping
  /// (io_uring: io_uring_enter; readiness backends: every system call the
  /// driver makes, the transfers themselves included, so the figure
  /// compares across backends as kernel entries per message).
  std::uint64_t kernel_entries = 0;

  /// Completions reaped (io_uring: CQEs).
  std::uint64_t completions = 0;

  /// Harvest passes that found at least one completion.
  std::uint64_t batches = 0;

  /// The most completions reaped in one pass.
  std::uint64_t max_batch = 0;

  /// Handlers (posted functions and operation completions) run.
  std::uint64_t handlers_run = 0;

  /// Times a thread went to sleep in the kernel with nothing to do.
  std::uint64_t sleeps = 0;

  /// Times another thread had to wake a sleeping one (one eventfd write
  /// each; an EVFILT_USER trigger on kqueue).
  std::uint64_t wakeups = 0;

  /// Timer waits that expired.
  std::uint64_t timers_fired = 0;

  /// Drivers set up: rings on io_uring, epoll or kqueue instances otherwise
  /// (one per thread that has run the context).
  std::uint64_t rings = 0;

  /// Successful steals: times an idle thread took half of a busy one's queue.
  std::uint64_t steals = 0;

  /// Calls handed to the blocking pool: regular-file reads, writes and
  /// syncs on the readiness backends (epoll, kqueue), where a file is never
  /// "ready" and its calls would block the thread. 0 on io_uring.
  std::uint64_t blocking_calls = 0;

  /// Threads the process-wide blocking pool has started (at most
  /// ZOKIO_BLOCKING_THREADS, default 8; shared by every context).
  std::uint64_t blocking_threads = 0;

  /// Mean completions per harvest pass that found any.
  double mean_batch() const noexcept
  {
    return batches ? static_cast<double>(completions) / static_cast<double>(batches) : 0.0;
  }
};

} // namespace zokio

#endif // ZOKIO_STATISTICS_HPP
