// zokio/detail/sched/scheduler.hpp: the run loop shared by every thread that
// runs a zokio context (io_context::run() callers and thread_pool workers).
//
// Each such thread owns a runner: a driver (its ring on io_uring, its epoll
// or kqueue instance otherwise: libs/detail/driver.hpp), a bounded FIFO
// queue of ready operations (local_queue, which others may steal from), and
// a LIFO slot.
//
// Protocol of one run-loop pass, on each thread inside run():
//   1. Run ready handlers, up to handler_batch, taking in order: an
//      immediate-class handler (shared queue); the LIFO slot; the local
//      queue; and, once every background_interval handlers, one
//      background-class handler.
//   2. Housekeeping, without blocking: take work queued from outside
//      (inject queue), move expired timer waits to the local queue, submit
//      every request the handlers started (io_uring: one io_uring_enter for
//      all their SQEs; readiness: their system calls), and harvest all
//      visible completions in one pass (io_uring: one CQ head update).
//   3. With nothing ready: run a background handler; else steal half of
//      another runner's queue (if fewer than half the active runners are
//      already searching); else sleep in the kernel: one io_uring_enter that
//      submits, then waits for a completion, a wake-up or the earliest timer
//      (readiness: the system calls, then one epoll_wait / kevent).
//
// LIFO slot: the first handler a running handler posts goes to the slot and
// runs next on the same thread, without touching any shared memory (the
// common "each handler posts the next" chain). Further posts go to the local
// queue in order. After lifo_limit consecutive slot runs, the slot's handler
// goes to the back of the queue if the queue holds anything, so two handlers
// passing control back and forth cannot starve the rest.
//
// Work counting (as in Asio): outstanding_work_ counts posted handlers not yet
// run, operations in progress and work guards; run() returns when it drops to
// zero. Work that only the current thread can finish (its LIFO slot, an SQE
// on its own ring) is counted in the runner's private_work_ and published
// once, when the running handler returns. Work that another thread may finish
// (anything stealable, timer waits, cross-thread posts) is counted in
// outstanding_work_ before it becomes visible. Finished work is subtracted
// in batches (private_work_ goes negative meanwhile) and always before the
// thread sleeps or leaves run(). So the shared count is never below the true
// amount while another thread could observe it, and never drops to zero while
// work exists: a running handler's own unit stays counted until it returns.
//
// Driver-bound steps: an operation belongs to the driver of the thread that
// started it, so a step that acts on an operation already there (its
// cancellation) must run on that driver's owner. Such steps are
// handed over with runner::post_remote: a per-runner MPSC queue (remote_)
// that only the owner drains, in housekeeping, into its pinned_ list; pinned
// steps run first in the next pass and are never stolen nor flushed to the
// inject queue. post_remote wakes the owner if it sleeps (sleeping_ /
// runner::wake below), and a sleeper looks at its remote_ after announcing the
// sleep. A new operation started from a thread that runs no runner of this
// scheduler is not bound yet: it goes through the inject queue, and the
// runner that takes it starts it on its own driver (socket_op::start and its
// start_step, libs/detail/socket/socket_op.cpp).
//
// Leaving for good (io_uring): a ring can only be entered by the thread that
// created it (IORING_SETUP_SINGLE_ISSUER, DEFER_TASKRUN), and a runner with a
// request still in its ring is never freed (~scheduler keeps it, and counts
// it in retained_runners()). Work keeps run() from returning, so only
// requests that are not work can be left in a ring when its thread is done
// with it: lasting multishot requests (a multishot accept) and internal
// steps (the Asio bridge's poll). So a thread that leaves the scheduler for
// good first retires its runner (retire_this_thread): a thread_pool worker
// whose run() has returned, before it exits or returns from attach(); and
// any thread that has run the scheduler, when it exits (a thread_local's
// destructor walks the schedulers not yet shut down; shutdown() takes a
// scheduler off that list first, under the same mutex, so the walk never
// meets one being torn down). Retiring cancels the ring's lasting multishot
// requests and reaps them to their last CQE on that thread
// (runner::retire); the operations completed meanwhile go to the inject
// queue, to be run by another thread or destroyed by shutdown(). Then the
// rest of the ring is evacuated (uring::driver::evacuate): operations that
// are work and still there (run() returned because of stop()) are
// cancelled (IORING_ASYNC_CANCEL_ANY, 5.19, or before that one cancel per
// request, found through the sockets: for_each_held) and reaped, since Linux does
// not cancel a pending receive when its thread exits and nobody else could
// reap it; a socket operation that came back unmade and was not cancelled
// by its user is made again by the next thread that runs the scheduler
// (socket_op::migrate), the others complete as they are. The runner is then
// marked evacuated_: what other threads hand it (cancel steps) goes to the
// shared queue, and a step finds its operation in no driver.
//
// Sleep and wake-up: a runner about to sleep sets its sleeping_ flag and
// increments num_sleeping_, then looks again at the shared queues, the stop
// flag, timers and (with other runners active) their local queues. A thread
// that makes work available publishes it first, then looks at num_sleeping_
// and, if some runner sleeps and none is searching, clears one runner's flag
// and wakes its driver (an eventfd write; EVFILT_USER on kqueue). All of these accesses are seq_cst (a fence on
// the local-queue side), so either the sleeper sees the work or the producer
// sees the sleeper (Dekker); and only a thread that really sleeps is woken.
#ifndef ZOKIO_DETAIL_SCHED_SCHEDULER_HPP
#define ZOKIO_DETAIL_SCHED_SCHEDULER_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/sched/inject_queue.hpp>
#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/sched/runner.hpp>
#include <zokio/backend.hpp>
#include <zokio/detail/driver_sizes.hpp>
#include <zokio/detail/timer/timer_queue.hpp>
#include <zokio/priority.hpp>
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

class receive_loop_base;

class scheduler
  : public boost::asio::detail::execution_context_service_base<scheduler>
{
public:
  static constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

  // Chooses the process's backend if no context has (zokio/backend.hpp)
  // and creates the calling thread's runner and driver. Throws
  // boost::system::system_error if neither can be set up.
  explicit scheduler(boost::asio::execution_context& ctx, int concurrency_hint = -1,
      const driver_sizes& sizes = {});
  ~scheduler();

  void shutdown() override;

  // fork_child: every ring, poller and wake-up descriptor was the parent's.
  // The child (one thread, the caller) replaces them; what they held is
  // made again or completed (uring::driver::forked,
  // readiness::driver::forked). Runners of threads the child
  // does not have are taken over by the next thread that runs the context.
  // fork_prepare: on Linux's libkqueue, its pending frees are made first
  // (kqueue_poller::before_fork). fork_parent: nothing.
  void notify_fork(boost::asio::execution_context::fork_event event) override;

  int concurrency_hint() const noexcept { return concurrency_hint_; }

  // The backend every runner of this scheduler drives.
  zokio::backend backend() const noexcept { return backend_; }

  // The kind of context whose implementation this is (context() is not
  // polymorphic). Set once by the context's constructor, before any other
  // thread can see the scheduler.
  enum class context_kind : unsigned char { io_context, thread_pool };
  context_kind kind() const noexcept { return kind_; }
  void set_kind(context_kind k) noexcept { kind_ = k; }

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

  void work_finished(long n = 1) noexcept
  {
    if (outstanding_work_.fetch_sub(n, std::memory_order_acq_rel) == n)
      stop();
  }

  // Queues op, which is not yet counted as work, to run as soon as possible
  // in its scheduling class. Any thread.
  void post_immediate(operation* op, bool is_continuation,
      priority_class c = priority_class::normal)
  {
    (void)is_continuation; // a continuation is what the LIFO slot serves anyway
    if (c != priority_class::normal)
    {
      post_class(op, c);
      return;
    }
    if (runner* r = this_thread_runner())
    {
      if (r->lifo_slot_ == nullptr)
      {
        // Only this thread can run the slot: the count may stay private.
        r->work_started();
        r->lifo_slot_ = op;
        return;
      }
      outstanding_work_.fetch_add(1, std::memory_order_relaxed);
      push_local(*r, op);
      return;
    }
    outstanding_work_.fetch_add(1, std::memory_order_relaxed);
    inject_.push(op);
    wake_one();
  }

  // Queues op, already counted as work, to complete. Any thread.
  void post_deferred(operation* op)
  {
    if (runner* r = this_thread_runner())
    {
      push_local(*r, op);
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
      push_local(*r, ops);
      return;
    }
    inject_.push(ops);
    wake_one();
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

  // fd is about to be closed (or released) by its socket, with none of its
  // operations left in any driver. A poller that does not drop a closed
  // descriptor by itself (libkqueue) is told here, on every runner; the
  // kernel's epoll and kqueue need nothing. Any thread.
  void descriptor_closing(int fd) noexcept
  {
#if defined(__linux__)
    if (backend_ == zokio::backend::kqueue)
      forget_descriptor(fd);
#else
    (void)fd;
#endif
  }

  // Called by a thread that leaves this scheduler for good, outside every
  // run function of it (see "Leaving for good" above): empties its runner's
  // driver of lasting multishot requests, then of every other request.
  // Operations completed meanwhile, and those to be made again, are queued
  // for other threads (or destroyed by shutdown()). Nothing to do if the
  // thread has no runner here.
  void retire_this_thread() noexcept;

  // The thread-exit hook: retire_this_thread() for every scheduler not yet
  // shut down. Called only by this thread's thread_local exit hook
  // (scheduler.cpp), on the exiting thread.
  static void retire_exiting_thread() noexcept;

  // Runners that ~scheduler could not free because a request was still in
  // their ring (io_uring: the kernel may write into them until the ring is
  // gone), over the life of the process. For tests and diagnostics; never decreases.
  static std::uint64_t retained_runners() noexcept;

  // Queues op, an internal step that is neither outstanding work nor a
  // handler and must not invoke user code: the next thread that runs the
  // scheduler runs it during housekeeping (the Asio bridge arms its poll on
  // that thread's driver this way). Any thread; wakes a sleeping runner.
  void post_internal(operation* op) noexcept
  {
    internal_.push(op);
    wake_one();
  }

  // Something this scheduler drives besides its own operations (the Asio
  // bridge, the signal service's pipe read), consulted by a runner just
  // before it sleeps in the kernel and by a thread that leaves for good.
  class idle_hook
  {
  public:
    // True if it made something ready for r (the runner then looks again
    // instead of sleeping). Called on r's thread, inside a run function.
    virtual bool before_sleep(runner& r) = 0;

    // The calling thread leaves the context for good (retire_this_thread,
    // outside every run function): take whatever the hook keeps in this
    // thread's driver out of it (runner::cancel_internal), leaving its
    // completion for the runner's retirement to reap.
    virtual void retire_this_thread() noexcept = 0;

    // The hook's internal step if it has one armed (in some runner's
    // driver), else null: a child after fork() finds it there and completes
    // it with -ECANCELED, since the kernel object it waited in was the
    // parent's; its completion arms it again (notify_fork).
    virtual io_operation* internal_step() noexcept { return nullptr; }

  protected:
    ~idle_hook() = default;

  private:
    friend class scheduler;
    idle_hook* next_hook_ = nullptr;  // immutable once published
  };

  // Adds h, which must live until the scheduler's shutdown (a service of
  // the context). Any thread, any time: the list is only ever pushed to
  // (release), and runners walk it after an acquire load of its head.
  void add_idle_hook(idle_hook* h) noexcept
  {
    idle_hook* head = idle_hooks_.load(std::memory_order_relaxed);
    do
      h->next_hook_ = head;
    while (!idle_hooks_.compare_exchange_weak(head, h, std::memory_order_release,
        std::memory_order_relaxed));
  }

  // Visits each socket operation (socket_op.hpp) that r's driver holds, as
  // the context's socket service knows them (each is linked to its socket
  // with its home runner): for a driver that must reach its requests one by
  // one (a kernel without IORING_ASYNC_CANCEL_ANY). f runs under the
  // socket's lock and must not take a lock. Any thread.
  using held_visitor = void (*)(io_operation* op, void* arg) noexcept;
  void for_each_held(runner& r, held_visitor f, void* arg) noexcept;

  // The same for the receive loops (receive_loop.hpp) whose multishot
  // request is in r's ring. f runs under the socket's lock.
  using loop_visitor = void (*)(receive_loop_base* l, void* arg) noexcept;
  void for_each_receive_loop(runner& r, loop_visitor f, void* arg) noexcept;

  // True from the start of shutdown(): what completes now is destroyed,
  // and objects a completion names (a buffer pool) may be gone already.
  bool shutting_down() const noexcept { return shutdown_; }

  // f(step, arg) for the internal step of each idle hook that has one armed
  // (idle_hook::internal_step), whichever driver holds it.
  void for_each_internal_step(held_visitor f, void* arg) noexcept
  {
    for (idle_hook* h = idle_hooks_.load(std::memory_order_acquire); h; h = h->next_hook_)
      if (io_operation* step = h->internal_step())
        f(step, arg);
  }

private:
  enum run_mode { mode_run, mode_run_one, mode_poll, mode_poll_one };

  // Handlers run between two housekeeping passes. Arbitrary: large enough that
  // housekeeping costs nothing per handler, small enough that completions
  // and cross-thread work wait at most a few microseconds behind a stream of
  // ready handlers.
  static constexpr unsigned handler_batch = ZOKIO_CAPACITY(64, 2);

  // Most operations taken from the inject queue per pass (bounded, so a
  // flood of cross-thread posts cannot starve completions).
  static constexpr std::size_t inject_batch = ZOKIO_CAPACITY(128, 3);

  // Consecutive LIFO-slot runs before the slot yields to the queue (as
  // Tokio's bound on LIFO polls). Arbitrary: long chains stay cheap, and
  // queued handlers wait at most this many handlers behind a ping-pong.
  static constexpr unsigned lifo_limit = ZOKIO_CAPACITY(32, 1);

  // Starvation bound of the background class: one background handler every
  // this many handlers, however much normal work is queued.
  static constexpr unsigned background_interval = ZOKIO_CAPACITY(128, 4);

  // Finished work published at once, at the latest (see run_op).
  // Arbitrary: one shared update per this many handlers.
  static constexpr unsigned finish_batch = ZOKIO_CAPACITY(64, 2);

  // How long an idle runner keeps looking before it sleeps. Measured
  // (perf/scenarios/burst_post, spawn_many): long enough to catch a producer
  // that is about to post again, short enough to cost nothing when idle.
  static constexpr std::int64_t spin_ns = 5'000;

  // Spinning only pays when another thread feeds this one; I/O completions
  // cannot show up during a spin (the kernel runs their task work when the
  // thread enters it). After this many spins in a row that found nothing,
  // the only runner of a scheduler stops spinning, except for one probe spin
  // every spin_probe_interval idle passes, which re-enables it when it finds
  // work. (Runners of a pool always spin: see spin_for_work.)
  static constexpr unsigned spin_miss_limit = 4;
  static constexpr unsigned spin_probe_interval = 64;

  // Longest sleep for a clock that is not steady (system_clock timers must
  // notice clock changes).
  static constexpr std::int64_t max_unsteady_wait_ns = 1'000'000'000;

  std::size_t do_run(run_mode mode, std::int64_t deadline_ns);
  std::size_t run_internal(runner& r);
  runner& enter(run_frame& frame);
  void leave(runner& r, run_frame& frame) noexcept;
  runner& runner_for_this_thread();
  operation* next_ready(runner& r);
  operation* pop_shared(inject_queue_type& q) noexcept;
  bool housekeeping(runner& r, bool submit = true);
  operation* steal(runner& r, bool forced);
  bool others_have_work(runner& r) const noexcept;
  void run_op(runner& r, operation* op);
  std::int64_t next_timer_wait_ns();
  void post_class(operation* op, priority_class c);
  void flush_local(runner& r) noexcept;
  void publish_private(runner& r) noexcept;
  bool spin_for_work(runner& r);
  bool any_hook_before_sleep(runner& r);
  bool submit_before_spin(runner& r);
  bool spin_once(runner& r) noexcept;

  // Appends to r's local queue, then lets an idle runner know if others
  // could take it. Once the queue has overflowed into the inject queue, new
  // work follows it there until the inject queue drains, so that handlers
  // still run in the order they were queued.
  void push_local(runner& r, operation* op)
  {
    if (r.overflowed_)
    {
      inject_.push(op);
    }
    else
    {
      op_queue overflow;
      if (!r.queue_.push(op, overflow))
      {
        r.overflowed_ = true;
        inject_.push(overflow);
      }
    }
    notify_idle();
  }

  void push_local(runner& r, op_queue& ops)
  {
    if (!r.overflowed_)
    {
      op_queue overflow;
      while (operation* op = ops.pop())
      {
        if (!r.queue_.push(op, overflow))
        {
          r.overflowed_ = true;
          inject_.push(overflow);
          break;
        }
      }
    }
    inject_.push(ops);
    notify_idle();
  }

  // After making stealable work visible: wake a sleeping runner if there is
  // one and nobody is already searching. Free with one runner.
  void notify_idle() noexcept
  {
    if (active_runners_.load(std::memory_order_relaxed) <= 1)
      return;
    if (sleepers_after_fence() != 0 && num_searching_.load(std::memory_order_relaxed) == 0)
      wake_one();
  }

  // Reads num_sleeping_ after a full fence, ordering the caller's earlier
  // stores (work made visible) before the read (see the protocol above).
  // ThreadSanitizer does not model fences, so under it the same ordering
  // comes from a read-modify-write on num_sleeping_ (which a sleeper's
  // increment also is).
  int sleepers_after_fence() noexcept
  {
#if defined(__SANITIZE_THREAD__)
    return num_sleeping_.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return num_sleeping_.load(std::memory_order_relaxed);
#endif
  }

  void wake_one() noexcept;
  void wake_all() noexcept;
  void forget_descriptor(int fd) noexcept;

  friend class runner;

  const int concurrency_hint_;
  const driver_sizes sizes_;
  const zokio::backend backend_;
  const std::uint64_t id_;  // unique for the process lifetime (thread caches)

  alignas(64) std::atomic<long> outstanding_work_{0};
  alignas(64) std::atomic<bool> stopped_{false};
  std::atomic<int> active_runners_{0};   // runners inside a run function
  alignas(64) std::atomic<int> num_sleeping_{0};   // runners asleep in the kernel
  std::atomic<int> num_searching_{0};  // runners looking for work to steal
  std::atomic<int> runner_count_{0};   // runners in the list
  bool shutdown_ = false;
  context_kind kind_ = context_kind::io_context;

  inject_queue_type inject_;      // normal class, queued from outside or overflowing
  inject_queue_type immediate_;   // immediate class
  inject_queue_type background_;  // background class
  inject_queue_type internal_;    // internal steps (post_internal), not counted as work
  std::atomic<idle_hook*> idle_hooks_{nullptr};  // see add_idle_hook

  // Every runner ever created, newest first. Runners are never removed before
  // the scheduler is destroyed, so wakers walk the list without a lock.
  std::atomic<runner*> runners_{nullptr};
  std::mutex runners_mutex_;  // creation and reassignment of runners

  std::atomic<timer_queue_base*> timer_queues_{nullptr};
  std::mutex timer_queues_mutex_;  // add/remove of queues

  // Link in the process-wide list of schedulers not yet shut down (the
  // thread-exit hook's), guarded by its mutex in scheduler.cpp.
  scheduler* live_prev_ = nullptr;
  scheduler* live_next_ = nullptr;
  bool live_ = false;
  void list_live() noexcept;
  void unlist_live() noexcept;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_SCHEDULER_HPP
