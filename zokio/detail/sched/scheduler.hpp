// zokio/detail/sched/scheduler.hpp: the run loop shared by every thread that
// runs a zokio context.
//
// Protocol of one run-loop pass, on each thread inside run():
//   1. Run ready handlers from the thread's own queue, up to handler_batch.
//   2. Housekeeping, without blocking: take work other threads queued
//      (inject queue), move expired timer waits to the ready queue, submit
//      every SQE the handlers prepared with one io_uring_enter, and harvest
//      all visible completions in one pass (one CQ head update).
//   3. If nothing is ready, sleep in the kernel: one io_uring_enter that
//      submits, then waits for a completion, a wake-up or the earliest timer.
//
// Work counting (as in Asio): outstanding_work_ counts posted handlers not yet
// run, operations in progress and work guards. run() returns when it drops to
// zero. On a thread inside run(), work started by a handler is counted in the
// runner's private_work_ and published once, when the handler returns, so a
// handler that posts one successor (the common chain) touches no shared
// counter at all.
//
// Sleep and wake-up: a runner that is about to sleep sets its sleeping_ flag,
// then re-checks the inject queue, stop flag and timers. A thread that queues
// work first publishes it, then looks at the flags, and writes to the eventfd
// of one runner whose flag it clears. All four accesses are seq_cst, so either
// the sleeper sees the work or the producer sees the flag (Dekker); and a
// thread that is not asleep is never woken, so busy loops pay no system call
// for work handed to them.
#ifndef ZOKIO_DETAIL_SCHED_SCHEDULER_HPP
#define ZOKIO_DETAIL_SCHED_SCHEDULER_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/sched/inject_queue.hpp>
#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/sched/runner.hpp>
#include <zokio/detail/timer/timer_queue.hpp>
#include <zokio/detail/uring/ring.hpp>
#include <zokio/statistics.hpp>

#include <boost/asio/execution_context.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>

namespace zokio {
namespace detail {

// The runner of the innermost run function on this thread, or null.
inline thread_local runner* current_runner = nullptr;

// One run function active on this thread; frames link outwards, so nested
// run functions (a handler of one context running another) can be walked.
struct run_frame
{
  runner* r;
  run_frame* outer;
};
inline thread_local run_frame* current_frame = nullptr;

class scheduler
  : public boost::asio::detail::execution_context_service_base<scheduler>
{
public:
  static constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

  // Creates the scheduler and a ring for the calling thread. Throws
  // boost::system::system_error if io_uring cannot be set up.
  explicit scheduler(boost::asio::execution_context& ctx, int concurrency_hint = -1,
      const uring::ring_sizes& sizes = {});
  ~scheduler();

  void shutdown() override;

  int concurrency_hint() const noexcept { return concurrency_hint_; }

  // Run functions (asio::io_context semantics). Deadlines are
  // std::chrono::steady_clock nanoseconds since its epoch.
  std::size_t run() { return do_run(mode_run, no_deadline); }
  std::size_t run_one() { return do_run(mode_run_one, no_deadline); }
  std::size_t poll() { return do_run(mode_poll, no_deadline); }
  std::size_t poll_one() { return do_run(mode_poll_one, no_deadline); }
  std::size_t run_until(std::int64_t deadline_ns) { return do_run(mode_run, deadline_ns); }
  std::size_t run_one_until(std::int64_t deadline_ns) { return do_run(mode_run_one, deadline_ns); }

  void stop();
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  void restart() noexcept { stopped_.store(false, std::memory_order_release); }

  // Outstanding work (any thread). Always the shared counter: work counted
  // here may be finished on another thread (a timer fired by another runner,
  // a work guard released elsewhere), so it cannot wait in a private count.
  void work_started() noexcept
  {
    outstanding_work_.fetch_add(1, std::memory_order_relaxed);
  }

  void work_finished() noexcept
  {
    if (outstanding_work_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      stop();
  }

  // Queues op, which is not yet counted as work, to run as soon as possible.
  // Any thread. On a thread running this scheduler with no other thread
  // running it (or for a continuation), op goes to the thread's own queue
  // without any atomic operation: only this thread can run it (its queue is
  // handed to others only after leave() has published the private count).
  void post_immediate(operation* op, bool is_continuation)
  {
    if (runner* r = this_thread_runner())
    {
      r->work_started();
      if (is_continuation || active_runners_.load(std::memory_order_relaxed) <= 1)
      {
        r->push_ready(op);
        return;
      }
    }
    else
    {
      outstanding_work_.fetch_add(1, std::memory_order_relaxed);
    }
    inject_.push(op);
    wake_one();
  }

  // Queues op, already counted as work, to complete. Any thread.
  void post_deferred(operation* op)
  {
    if (runner* r = this_thread_runner())
    {
      r->push_ready(op);
      return;
    }
    inject_.push(op);
    wake_one();
  }

  void post_deferred(op_queue& ops)
  {
    if (ops.empty())
      return;
    if (runner* r = this_thread_runner())
    {
      r->push_ready(ops);
      return;
    }
    inject_.push(ops);
    wake_one();
  }

  // Starts a kernel operation, already counted as work. On a thread running
  // this scheduler it goes to that thread's ring; from any other thread it is
  // handed to a running thread, which submits it (op's func_ must then be a
  // start step that calls start_here()).
  void start_op(uring_operation* op)
  {
    if (runner* r = this_thread_runner())
      r->start(op);
    else
      post_deferred(op);
  }

  // Counts a kernel operation about to be started on the calling thread's
  // ring. Its completion is reaped and run by this thread, so the count may
  // stay private until the current handler returns.
  void work_started_here() noexcept
  {
    if (runner* r = this_thread_runner())
      r->work_started();
    else
      work_started();
  }

  // The runner of this scheduler on the calling thread, if the thread is
  // inside one of its run functions (innermost only: the fast path).
  runner* this_thread_runner() const noexcept
  {
    runner* r = current_runner;
    return (r && &r->owner() == this) ? r : nullptr;
  }

  // True if the calling thread is inside a run function of this scheduler,
  // at any nesting depth.
  bool can_dispatch() const noexcept;

  // Stores the current exception to be rethrown by the run function once the
  // handler that is executing returns (executor::execute semantics).
  void capture_current_exception();

  // Timer queues, one per clock type in use (registered by timer services).
  void add_timer_queue(timer_queue_base& q);
  void remove_timer_queue(timer_queue_base& q);

  // Called after a timer became the earliest of its queue: a sleeping
  // runner may have to shorten its sleep. Any thread.
  void timer_queue_changed()
  {
    if (this_thread_runner() == nullptr)
      wake_one();
  }

  zokio::statistics statistics() const;

private:
  enum run_mode { mode_run, mode_run_one, mode_poll, mode_poll_one };

  // Handlers run between two housekeeping passes. Arbitrary: large enough that
  // housekeeping costs nothing per handler, small enough that completions
  // and cross-thread work wait at most a few microseconds behind a stream of
  // ready handlers.
  static constexpr unsigned handler_batch = ZOKIO_CAPACITY(64, 2);

  // Operations taken from the inject queue per pass (bounded, so a flood of
  // cross-thread posts cannot starve completions).
  static constexpr std::size_t inject_batch = ZOKIO_CAPACITY(256, 3);

  // Longest sleep for a clock that is not steady (system_clock timers must
  // notice clock changes).
  static constexpr std::int64_t max_unsteady_wait_ns = 1'000'000'000;

  std::size_t do_run(run_mode mode, std::int64_t deadline_ns);
  runner& enter(run_frame& frame);
  void leave(runner& r, run_frame& frame) noexcept;
  runner& runner_for_this_thread();
  bool housekeeping(runner& r);
  void run_op(runner& r, operation* op);
  std::int64_t next_timer_wait_ns();
  void wake_one() noexcept;
  void wake_all() noexcept;
  void adopt_orphans(runner& r);

  friend class runner;

  const int concurrency_hint_;
  const uring::ring_sizes sizes_;
  const std::uint64_t id_;  // unique for the process lifetime (thread caches)

  alignas(64) std::atomic<long> outstanding_work_{0};
  alignas(64) std::atomic<bool> stopped_{false};
  std::atomic<int> active_runners_{0};
  bool shutdown_ = false;

  inject_queue inject_;

  // Every runner ever created, newest first. Runners are never removed before
  // the scheduler is destroyed, so wakers walk the list without a lock.
  std::atomic<runner*> runners_{nullptr};
  std::mutex runners_mutex_;  // creation and reassignment of runners

  std::atomic<timer_queue_base*> timer_queues_{nullptr};
  std::mutex timer_queues_mutex_;  // add/remove of queues
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_SCHEDULER_HPP
