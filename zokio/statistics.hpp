// zokio/statistics.hpp: counters a zokio context keeps about its own work.
#ifndef ZOKIO_STATISTICS_HPP
#define ZOKIO_STATISTICS_HPP

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
  /// SQEs handed to the kernel.
  std::uint64_t submissions = 0;

  /// Calls into the kernel (io_uring_enter) for submitting, harvesting or
  /// sleeping.
  std::uint64_t kernel_entries = 0;

  /// Completions (CQEs) reaped.
  std::uint64_t completions = 0;

  /// Harvest passes that found at least one completion.
  std::uint64_t batches = 0;

  /// The most completions reaped in one pass.
  std::uint64_t max_batch = 0;

  /// Handlers (posted functions and operation completions) run.
  std::uint64_t handlers_run = 0;

  /// Times a thread went to sleep in the kernel with nothing to do.
  std::uint64_t sleeps = 0;

  /// Times another thread had to wake a sleeping one (one eventfd write each).
  std::uint64_t wakeups = 0;

  /// Timer waits that expired.
  std::uint64_t timers_fired = 0;

  /// Rings created (one per thread that has run the context).
  std::uint64_t rings = 0;

  /// Successful steals: times an idle thread took half of a busy one's queue.
  std::uint64_t steals = 0;

  /// Mean completions per harvest pass that found any.
  double mean_batch() const noexcept
  {
    return batches ? static_cast<double>(completions) / static_cast<double>(batches) : 0.0;
  }
};

} // namespace zokio

#endif // ZOKIO_STATISTICS_HPP
