// zokio/detail/sched/runner.hpp: the state of one thread that runs a scheduler.
#ifndef ZOKIO_DETAIL_SCHED_RUNNER_HPP
#define ZOKIO_DETAIL_SCHED_RUNNER_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/sched/inject_queue.hpp>
#include <zokio/detail/sched/local_queue.hpp>
#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/uring/ring.hpp>
#include <zokio/detail/uring/uring_operation.hpp>

#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/detail/thread_info_base.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace zokio {
namespace detail {

class multishot_operation;
class scheduler;

// Relaxed counter written by one thread, read by any: a load and a store, no
// read-modify-write, since only the owner thread ever writes it.
class owned_counter
{
public:
  void add(std::uint64_t n = 1) noexcept
  {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void raise_to(std::uint64_t n) noexcept
  {
    if (n > value_.load(std::memory_order_relaxed))
      value_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::uint64_t> value_{0};
};

// One per thread that has run the scheduler: its ring, its ready queue and
// LIFO slot, the work it has started but not yet published, and its counters.
//
// Threads: everything but queue_ (which other runners steal from), sleeping_,
// the counters and the list link belongs to the owner thread and is touched
// only while that thread is inside a run function, or in retire() (the owner
// thread, outside every run function of the scheduler), or, when the owner
// has exited, under the scheduler's runner mutex or during its shutdown. The
// runner derives from Asio's thread_context so that, while it runs, Asio's
// recycling allocator and awaitable frames find its thread_info_base and
// reuse memory instead of calling operator new.
class runner : public boost::asio::detail::thread_context
{
public:
  explicit runner(scheduler& owner);
  ~runner();

  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  scheduler& owner() const noexcept { return owner_; }

  // Counts one unit of outstanding work that only this thread can finish
  // (an operation in its LIFO slot or in its own ring); published to the
  // scheduler's atomic count when the current handler returns.
  void work_started() noexcept { ++private_work_; }

  // Counts timer waits that expired without passing through a timer queue.
  void note_timers_fired(std::uint64_t n) noexcept { timers_fired_.add(n); }

  // Hands op to this runner's ring. Never fails: when the submission queue is
  // full it is flushed to the kernel first, and if the kernel cannot take
  // more yet, op waits in a backlog that is prepared on the next pass. Owner
  // thread.
  void start(uring_operation* op);

  // Operations this runner has in the kernel (not counting its wake-up read).
  std::size_t in_flight() const noexcept { return in_flight_; }

  // Hands op, an internal step of the scheduler's own machinery (the Asio
  // bridge's poll, zokio/detail/asio_bridge.hpp), to this runner's ring. Its
  // completion is neither outstanding work nor a handler: run() may return
  // while it is armed, and it is run by this thread only, at the top of its
  // next run-loop pass (scheduler::run_internal). Tagged in the ring by the
  // low bit of its user_data (operations are aligned). Owner thread.
  void start_internal(uring_operation* op);

  // Handlers an internal step ran on behalf of another scheduler (Asio's
  // handlers, run by the bridge): the run function counts them as its own.
  // Owner thread.
  void note_foreign_handlers(std::size_t n) noexcept { foreign_handlers_ += n; }

  uring::ring& ring() noexcept { return *ring_; }

  // True while retire() empties this ring: a multishot operation must not
  // start a lasting request on it then (it hands the request to another
  // thread of the context instead). Owner thread.
  bool retiring() const noexcept { return retiring_; }

private:
  friend class scheduler;

  // Called by the owner thread when it leaves the scheduler for good (see
  // scheduler::retire_this_thread), outside every run function: cancels
  // each lasting multishot request in the ring (IORING_OP_ASYNC_CANCEL by
  // its user_data) and reaps, entering the kernel with a 10 ms timeout,
  // until no multishot request (lasting or a cancel) is left in the ring, or
  // for at most retire_limit_ns. Every CQE reaped meanwhile is handled as in
  // a run loop: multishot CQEs inline (their operations may queue
  // connections, or complete parked accepts into out), other operations
  // into out, internal steps into internal_ready_. Operations still in the
  // backlog stay there. True if no multishot request is left.
  bool retire(op_queue& out) noexcept;

  // Longest retire(): the cancels complete at once unless the kernel is
  // short of memory. Same bound as the Asio bridge's retirement.
  static constexpr std::int64_t retire_limit_ns = 1'000'000'000;

  // Owner-thread only.
  void prepare_sqe(uring_operation* op, ::io_uring_sqe* sqe);
  void create_ring();
  void arm_wakeup();
  bool submit();                      // flushes prepared SQEs; false if the kernel pushed back
  std::size_t reap(op_queue& out);    // moves completed operations to out
  void flush_backlog();
  void enter_kernel_for_events();
  void sleep(std::int64_t timeout_ns);

  scheduler& owner_;
  std::unique_ptr<uring::ring> ring_;
  local_queue queue_;                 // ready operations, FIFO; others steal from it
  operation* lifo_slot_ = nullptr;    // posted by the running handler; runs next, not stealable
  unsigned lifo_runs_ = 0;            // consecutive runs from the slot
  bool overflowed_ = false;           // queue_ overflowed into the inject queue: send
                                      // new work there too until it drains (FIFO)
  unsigned since_background_ = 0;     // handlers run since the last background one
  std::uint32_t random_;              // victim selection (xorshift)
  op_queue backlog_;                  // operations waiting for a free SQE
  op_queue internal_backlog_;         // internal steps waiting for a free SQE
  op_queue internal_ready_;           // internal steps completed, not yet run (owner only)
  std::size_t foreign_handlers_ = 0;  // see note_foreign_handlers
  long private_work_ = 0;             // work started here, not yet published
  std::size_t in_flight_ = 0;         // SQEs given to the kernel, CQE not reaped
  std::size_t multishot_in_flight_ = 0; // of which multishot operations (lasting or not)
  multishot_operation* armed_ = nullptr; // lasting multishot requests in the ring
  bool retiring_ = false;             // inside retire()
  int depth_ = 0;                     // nesting of run functions on the owner thread
  unsigned spin_misses_ = 0;          // idle spins in a row that found no work
                                      // (scheduler::spin_for_work)
  bool wake_armed_ = false;           // the eventfd read is in the ring
  std::uint64_t wake_buffer_ = 0;     // target of the eventfd read
  int wake_fd_ = -1;                  // eventfd another thread writes to wake this one

  // The owner thread: its liveness flag (false once it has exited).
  std::shared_ptr<const std::atomic<bool>> owner_thread_;

  // Per-thread memory caches for Asio's recycling allocator.
  boost::asio::detail::thread_info_base info_;

  // Set by the owner just before it sleeps in the kernel; a thread that
  // queues work for it clears it and writes to wake_fd_.
  alignas(64) std::atomic<bool> sleeping_{false};

  // Counters (owner writes, anyone reads).
  owned_counter submissions_, kernel_entries_, completions_, batches_, max_batch_,
      handlers_run_, sleeps_, wakeups_, timers_fired_, rings_, steals_;

  runner* next_ = nullptr;            // scheduler's list; immutable once published

public:
  // Queues op to run on this runner's thread and no other (it acts on this
  // runner's ring: a cancellation of an operation in flight here). Any
  // thread; the caller has counted op in the scheduler's shared count
  // (scheduler::work_started). Wakes the runner if it sleeps (the
  // sleeping_ / wake_fd_ handshake of scheduler::wake_one).
  void post_remote(operation* op) noexcept;

private:
  // Operations other threads handed to this runner (post_remote). Never
  // stolen: the owner thread moves them to pinned_ during housekeeping.
  inject_queue remote_;

  // Owner thread only: operations that must run on this thread (taken from
  // remote_), run before the LIFO slot and the local queue. Not stealable,
  // and not flushed to the inject queue when the owner leaves run(): they
  // wait for the owner, whose ring they act on.
  op_queue pinned_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_RUNNER_HPP
