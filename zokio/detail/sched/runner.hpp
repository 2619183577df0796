// zokio/detail/sched/runner.hpp: the state of one thread that runs a scheduler.
//
// The runner holds the thread's scheduling state (queues, counters) and its
// driver: the one object that knows the kernel interface (io_uring ring,
// epoll or kqueue instance). The scheduler reaches the driver through the
// functions of libs/detail/driver.hpp, which pick the backend's driver with
// one switch on backend_ (the same value for every runner of the process,
// so the branch always goes the same way); nothing outside the drivers
// touches a kernel interface.
#ifndef ZOKIO_DETAIL_SCHED_RUNNER_HPP
#define ZOKIO_DETAIL_SCHED_RUNNER_HPP

#include <zokio/backend.hpp>
#include <zokio/detail/config.hpp>
#include <zokio/detail/driver_sizes.hpp>
#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/inject_queue.hpp>
#include <zokio/detail/sched/local_queue.hpp>
#include <zokio/detail/sched/op_queue.hpp>

#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/detail/thread_info_base.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace zokio {
namespace detail {

class scheduler;

// The drivers (library sources only: libs/detail/<backend>/driver.hpp).
namespace uring { class driver; }
namespace readiness {
template <typename Poller> class driver;
class epoll_driver;
class kqueue_driver;
} // namespace readiness

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

// One per thread that has run the scheduler: its driver, its ready queue and
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
  // Creates the driver of the process's backend. Throws
  // boost::system::system_error if it cannot be created.
  runner(scheduler& owner, backend b, const driver_sizes& sizes);
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

  // Hands op to this runner's driver. Never fails: the io_uring driver
  // flushes a full submission queue to the kernel first and, if the kernel
  // cannot take more yet, keeps op in a backlog prepared on the next pass;
  // the readiness drivers make the system call when the pass submits, and
  // wait for readiness if it would block. Owner thread.
  void start(io_operation* op);

  // Hands op, an internal step of the scheduler's own machinery (the Asio
  // bridge's poll, zokio/detail/asio_bridge.hpp), to this runner's driver.
  // Its completion is neither outstanding work nor a handler: run() may
  // return while it is armed, and it is run by this thread only, at the top
  // of its next run-loop pass (scheduler::run_internal). Owner thread.
  void start_internal(io_operation* op);

  // Takes op, an internal step started here, out of the driver at once
  // (the thread leaves the context for good: scheduler::idle_hook), and
  // waits at most about a second for its completion, which the runner's
  // retirement then reaps. Owner thread, outside every run function.
  void cancel_internal(io_operation* op) noexcept;

  // The backend of this runner's driver (the process's).
  zokio::backend backend() const noexcept { return backend_; }

  // Handlers an internal step ran on behalf of another scheduler (Asio's
  // handlers, run by the bridge): the run function counts them as its own.
  // Owner thread.
  void note_foreign_handlers(std::size_t n) noexcept { foreign_handlers_ += n; }

  // True while retire() empties this driver: a multishot operation must not
  // start a lasting request on it then (it hands the request to another
  // thread of the context instead). Owner thread.
  bool retiring() const noexcept { return retiring_; }

  // The driver, for library sources that know its type (libs/detail/driver.hpp).
  uring::driver& uring_driver() noexcept { return *driver_.uring; }
  readiness::epoll_driver& epoll_driver() noexcept { return *driver_.epoll; }
  readiness::kqueue_driver& kqueue_driver() noexcept { return *driver_.kqueue; }

private:
  friend class scheduler;
  friend class uring::driver;
  template <typename Poller> friend class readiness::driver;

  // Wakes the owner thread if it sleeps in its driver. Any thread.
  void wake() noexcept;

  // The one wake-up handshake (post_remote, scheduler::wake_one and
  // wake_all): if the owner has said it sleeps (sleeping_), clear the flag
  // and wake it; true if this call did. The exchange makes one waker of
  // many pay the system call; the load first keeps the cache line shared
  // while the owner is awake. seq_cst on both, as the owner's store of
  // sleeping_ and its last look at its queues (scheduler.hpp: the sleep
  // protocol): either the owner sees the work queued before this call, or
  // this call sees sleeping_ set.
  bool wake_if_sleeping() noexcept
  {
    if (sleeping_.load(std::memory_order_seq_cst)
        && sleeping_.exchange(false, std::memory_order_seq_cst))
    {
      wake();
      return true;
    }
    return false;
  }

  scheduler& owner_;
  const zokio::backend backend_;
  union
  {
    uring::driver* uring;
    readiness::epoll_driver* epoll;
    readiness::kqueue_driver* kqueue;
  } driver_;                          // owned; the member backend_ names is set
  local_queue queue_;                 // ready operations, FIFO; others steal from it
  operation* lifo_slot_ = nullptr;    // posted by the running handler; runs next, not stealable
  unsigned lifo_runs_ = 0;            // consecutive runs from the slot
  bool overflowed_ = false;           // queue_ overflowed into the inject queue: send
                                      // new work there too until it drains (FIFO)
  unsigned since_background_ = 0;     // handlers run since the last background one
  std::uint32_t random_;              // victim selection (xorshift)
  op_queue internal_ready_;           // internal steps completed, not yet run (owner
                                      // only; the driver's reap fills it)
  std::size_t foreign_handlers_ = 0;  // see note_foreign_handlers
  long private_work_ = 0;             // work started here, not yet published
  bool retiring_ = false;             // inside the driver's retire
  int depth_ = 0;                     // nesting of run functions on the owner thread
  unsigned spin_misses_ = 0;          // idle spins in a row that found no work
                                      // (scheduler::spin_for_work)

  // The owner thread: its liveness flag (false once it has exited).
  std::shared_ptr<const std::atomic<bool>> owner_thread_;

  // Per-thread memory caches for Asio's recycling allocator.
  boost::asio::detail::thread_info_base info_;

  // Set by the owner just before it sleeps in the kernel; a thread that
  // queues work for it clears it and wakes it (wake()).
  alignas(64) std::atomic<bool> sleeping_{false};

  // Counters (owner writes, anyone reads; the driver writes the first four,
  // sleeps_, wakeups_ and rings_).
  owned_counter submissions_, kernel_entries_, completions_, batches_, max_batch_,
      handlers_run_, sleeps_, wakeups_, timers_fired_, rings_, steals_, blocking_calls_;

  runner* next_ = nullptr;            // scheduler's list; immutable once published

public:
  // Queues op to run on this runner's thread and no other (it acts on this
  // runner's driver: a cancellation of an operation in flight here). Any
  // thread; the caller has counted op in the scheduler's shared count
  // (scheduler::work_started). Wakes the runner if it sleeps (the
  // sleeping_ / wake() handshake of scheduler::wake_one).
  void post_remote(operation* op) noexcept;

  // The owner thread has left for good and emptied this runner's ring
  // (scheduler::retire_this_thread): no operation is in its driver, and
  // what is handed to it (post_remote) goes to the scheduler's shared queue
  // instead, to be run by any thread. Cleared when another thread takes the
  // runner over. Any thread (seq_cst: pairs with post_remote's push, see
  // there).
  bool evacuated() const noexcept { return evacuated_.load(std::memory_order_seq_cst); }

private:
  // Moves what remote_ and pinned_ hold to out; remote_ under its consumer
  // lock, so any thread may call it (pinned_: the owner, or the leaving
  // thread before anyone else can see evacuated_).
  void drain_remote(op_queue& out) noexcept;

  // Moves what remote_ holds to out, under its consumer lock, retrying
  // until remote_ looks empty (a push linked after another drainer's last
  // pop is taken). Any thread.
  void take_remote(op_queue& out) noexcept;

  // Operations other threads handed to this runner (post_remote). Never
  // stolen: the owner thread moves them to pinned_ during housekeeping.
  inject_queue_type remote_;

  std::atomic<bool> evacuated_{false};

  // Owner thread only: operations that must run on this thread (taken from
  // remote_), run before the LIFO slot and the local queue. Not stealable,
  // and not flushed to the inject queue when the owner leaves run(): they
  // wait for the owner, whose driver they act on.
  op_queue pinned_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_RUNNER_HPP
