// libs/detail/sched/scheduler.cpp: run functions, runner assignment, wake-ups,
// shutdown.
#include <zokio/detail/sched/scheduler.hpp>

#include "detail/blocking_pool.hpp"
#include "detail/driver.hpp"
#include "detail/sigpipe.hpp"

#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/detail/socket/socket_service.hpp>

#include <boost/asio/detail/call_stack.hpp>

#include <chrono>
#include <optional>
#include <vector>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace {

std::atomic<std::uint64_t> next_scheduler_id{1};

// See scheduler::retained_runners.
std::atomic<std::uint64_t> retained_runner_count{0};

// The schedulers not yet shut down (scheduler::live_next_), for the
// thread-exit hook. Lock order: live_mutex before a scheduler's
// runners_mutex_. Both are never destroyed (trivial destructors), so a
// thread that exits during static destruction still finds them.
std::mutex live_mutex;
scheduler* live_head = nullptr;

// Liveness of the calling thread, shared with the runners it owns: the flag
// turns false when the thread exits, which lets another thread take over
// the runner (with a new ring, since a ring belongs to its creating thread).
// Constructed when the thread first runs a scheduler.
struct thread_identity
{
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
  ~thread_identity()
  {
    // Only this thread can empty its rings (scheduler.hpp, "Leaving for
    // good"); then its runners may be taken over.
    scheduler::retire_exiting_thread();
    alive->store(false, std::memory_order_release);
  }
};

thread_local thread_identity this_thread_identity;

// One-entry cache: the runner this thread used last, and for which scheduler.
thread_local std::uint64_t cached_scheduler_id = 0;
thread_local runner* cached_runner = nullptr;

std::int64_t steady_now_ns() noexcept
{
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

scheduler::scheduler(boost::asio::execution_context& ctx, int concurrency_hint,
    const driver_sizes& sizes)
  : boost::asio::detail::execution_context_service_base<scheduler>(ctx),
    concurrency_hint_(concurrency_hint),
    sizes_(sizes),
    backend_(current_backend().backend),
    id_(next_scheduler_id.fetch_add(1, std::memory_order_relaxed))
{
  // Create the calling thread's runner now, so that a driver that cannot be
  // set up fails here, at construction, with a clear exception.
  {
    std::lock_guard<std::mutex> lock(runners_mutex_);
    runner_for_this_thread();
  }
  list_live();
}

scheduler::~scheduler()
{
  unlist_live(); // normally done by shutdown()
  runner* r = runners_.load(std::memory_order_acquire);
  while (r)
  {
    runner* next = r->next_;
    if (drv::in_flight(*r) != 0)
    {
      // The kernel may still write into these operations: never free them,
      // nor the runner that holds the wake-up buffer. Closing the ring asks
      // the kernel to cancel them (drv::abandon).
      drv::abandon(*r);
      retained_runner_count.fetch_add(1, std::memory_order_relaxed);
    }
    else
    {
      delete r;
    }
    r = next;
  }
}

void scheduler::list_live() noexcept
{
  std::lock_guard<std::mutex> lock(live_mutex);
  live_prev_ = nullptr;
  live_next_ = live_head;
  if (live_head)
    live_head->live_prev_ = this;
  live_head = this;
  live_ = true;
}

void scheduler::unlist_live() noexcept
{
  // Waits for a thread-exit hook that is retiring a runner of this
  // scheduler; none starts afterwards.
  std::lock_guard<std::mutex> lock(live_mutex);
  if (!live_)
    return;
  if (live_prev_)
    live_prev_->live_next_ = live_next_;
  else
    live_head = live_next_;
  if (live_next_)
    live_next_->live_prev_ = live_prev_;
  live_prev_ = live_next_ = nullptr;
  live_ = false;
}

void scheduler::retire_exiting_thread() noexcept
{
  std::lock_guard<std::mutex> lock(live_mutex);
  for (scheduler* s = live_head; s; s = s->live_next_)
    s->retire_this_thread();
}

std::uint64_t scheduler::retained_runners() noexcept
{
  return retained_runner_count.load(std::memory_order_relaxed);
}

void scheduler::retire_this_thread() noexcept
{
  const std::atomic<bool>* me = this_thread_identity.alive.get();
  runner* mine = nullptr;
  {
    // (owner_thread_ of another thread's runner may be reassigned meanwhile:
    // read under the mutex.)
    std::lock_guard<std::mutex> lock(runners_mutex_);
    for (runner* r = runners_.load(std::memory_order_relaxed); r; r = r->next_)
    {
      if (r->owner_thread_.get() == me)
      {
        mine = r;
        break;
      }
    }
  }
  // Still inside a run function of this scheduler (called from a handler):
  // not leaving, and the run loop owns the runner's queues.
  if (mine == nullptr || mine->depth_ != 0)
    return;
  // The Asio bridge's poll first: it only waits for the poll's completion
  // to be posted, which the runner's retirement then reaps with the rest.
  for (idle_hook* h = idle_hooks_.load(std::memory_order_acquire); h; h = h->next_hook_)
    h->retire_this_thread();
  op_queue out;
  drv::retire(*mine, out);

  // Nothing may stay in the ring of a thread that leaves for good (see
  // uring::driver::evacuate): its requests are cancelled and reaped. A
  // socket operation the kernel gave back unmade, which its user did not
  // cancel, is made again by the next thread that runs the context
  // (socket_op::migrate); every other one completes with what it has (its
  // handler sees operation_aborted where it was cancelled). The steps
  // other threads handed to this runner go to the shared queue as well,
  // and so does whatever they hand it from now on (runner::evacuated_).
  op_queue evacuated;
  if (drv::evacuate(*mine, evacuated))
  {
    mine->evacuated_.store(true, std::memory_order_seq_cst);
    mine->drain_remote(out);
  }
  op_queue again;
  while (operation* op = evacuated.pop())
  {
    auto* io = static_cast<io_operation*>(op);
    if (io->migratable_ && socket_op::migrate(static_cast<socket_op*>(io)))
      again.push(io);
    else
      out.push(io);
  }
  out.push(again);
  // This thread runs no runner of this scheduler now: to the inject queue,
  // waking a runner if one sleeps.
  post_deferred(out);
}

void scheduler::for_each_held(runner& r, held_visitor f, void* arg) noexcept
{
  // Looked up, not registered by the service: Asio may construct a second
  // socket_service when two threads ask for the first at once, and destroy
  // the one that lost. (Under the registry's lock; never on a hot path.)
  if (boost::asio::has_service<socket_service>(context()))
    boost::asio::use_service<socket_service>(context()).for_each_held(r, f, arg);
}

void scheduler::for_each_receive_loop(runner& r, loop_visitor f, void* arg) noexcept
{
  if (boost::asio::has_service<socket_service>(context()))
    boost::asio::use_service<socket_service>(context()).for_each_receive_loop(r, f, arg);
}

void scheduler::notify_fork(boost::asio::execution_context::fork_event event)
{
#if defined(ZOKIO_HAS_KQUEUE)
  if (event == boost::asio::execution_context::fork_prepare && backend_ == zokio::backend::kqueue)
    readiness::kqueue_poller::before_fork();
#endif
  if (event != boost::asio::execution_context::fork_child)
    return;
  // The child has one thread, the caller; no other can touch the runners.
  // A runner of a thread the child does not have is marked as owned by a
  // thread that exited, so the next thread that runs the context takes it
  // over (with a ring of its own); until then, its driver's new ring
  // belongs to this thread.
  static const std::shared_ptr<const std::atomic<bool>> gone =
      std::make_shared<const std::atomic<bool>>(false);
  const auto& me = this_thread_identity.alive;
  std::vector<io_operation*> steps;
  for (idle_hook* h = idle_hooks_.load(std::memory_order_acquire); h; h = h->next_hook_)
    steps.push_back(h->internal_step());
  op_queue out;
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
  {
    if (r->owner_thread_ && r->owner_thread_ != me)
      r->owner_thread_ = gone;
    drv::forked(*r, steps.data(), steps.size(), out);
  }
  cached_scheduler_id = 0;
  cached_runner = nullptr;
  // Operations made ready (completions, and requests to make again) go to
  // the shared queue; a runner that holds internal steps runs them when a
  // thread runs it.
  inject_.push(out);
}

void scheduler::shutdown()
{
  // Off the thread-exit hook's list first: from here on no exiting thread
  // reaps a ring of this scheduler.
  unlist_live();
  shutdown_ = true;
  stopped_.store(true, std::memory_order_release);

  // Queued handlers are destroyed, not invoked (asio::io_context semantics).
  for (inject_queue_type* q : {&inject_, &immediate_, &background_, &internal_})
    while (operation* op = q->pop())
      op->destroy();

  const auto& me = this_thread_identity.alive;
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
  {
    if (r->lifo_slot_)
    {
      r->lifo_slot_->destroy();
      r->lifo_slot_ = nullptr;
    }
    while (operation* op = r->queue_.pop())
      op->destroy();
    while (operation* op = r->remote_.pop())
      op->destroy();
    while (operation* op = r->pinned_.pop())
      op->destroy();
    r->internal_ready_.clear();  // internal steps belong to their service: not freed

    // What the driver holds: cancelled and reaped, or destroyed, as far as
    // the calling thread can reach it (drv::shutdown).
    drv::shutdown(*r, r->owner_thread_ == me,
        r->owner_thread_ && r->owner_thread_->load(std::memory_order_acquire));

    // Internal steps reaped just now belong to services (the Asio bridge)
    // that are destroyed before this scheduler: let go of them while they
    // exist.
    r->internal_ready_.clear();
  }
}

runner& scheduler::runner_for_this_thread()
{
  // Called with runners_mutex_ held.
  const auto& me = this_thread_identity.alive;
  runner* reusable = nullptr;
  for (runner* r = runners_.load(std::memory_order_relaxed); r; r = r->next_)
  {
    if (r->owner_thread_ == me)
      return *r;
    if (!reusable && r->owner_thread_
        && !r->owner_thread_->load(std::memory_order_acquire))
      reusable = r;
  }

  if (reusable)
  {
    // Its thread has exited: collect the completions the kernel posted when
    // it cancelled that thread's requests, hand them to whoever runs next,
    // and give the runner a new ring that belongs to this thread.
    op_queue reaped;
    bool reused = drv::take_over(*reusable, reaped);
    inject_.push(reaped);
    if (reused)
    {
      reusable->owner_thread_ = me;
      // Its queues are this thread's to serve again (post_remote no longer
      // redirects).
      reusable->evacuated_.store(false, std::memory_order_seq_cst);
      return *reusable;
    }
  }

  auto fresh = std::make_unique<runner>(*this, backend_, sizes_);
  fresh->owner_thread_ = me;
  runner* r = fresh.release();
  r->next_ = runners_.load(std::memory_order_relaxed);
  runners_.store(r, std::memory_order_release);
  runner_count_.fetch_add(1, std::memory_order_relaxed);
  return *r;
}

runner& scheduler::enter(run_frame& frame)
{
  runner* r;
  if (cached_scheduler_id == id_ && cached_runner->owner_thread_ == this_thread_identity.alive)
  {
    r = cached_runner;
  }
  else
  {
    std::lock_guard<std::mutex> lock(runners_mutex_);
    r = &runner_for_this_thread();
    cached_scheduler_id = id_;
    cached_runner = r;
  }
  frame.r = r;
  frame.outer = current_frame;
  current_frame = &frame;
  current_runner = r;
  if (r->depth_++ == 0)
    active_runners_.fetch_add(1, std::memory_order_relaxed);
  return *r;
}

void scheduler::leave(runner& r, run_frame& frame) noexcept
{
  current_frame = frame.outer;
  current_runner = frame.outer ? frame.outer->r : nullptr;
  // Out of every run: the thread's signal mask as it was (sigpipe.hpp).
  if (frame.outer == nullptr)
    sigpipe::restore();
  if (--r.depth_ != 0)
    return;

  publish_private(r);

  // Whatever this thread made ready but did not run goes where any thread
  // that runs the scheduler next will find it.
  flush_local(r);
  active_runners_.fetch_sub(1, std::memory_order_relaxed);
}

void scheduler::publish_private(runner& r) noexcept
{
  long balance = r.private_work_;
  r.private_work_ = 0;
  if (balance > 0)
    outstanding_work_.fetch_add(balance, std::memory_order_relaxed);
  else if (balance < 0)
    work_finished(-balance);
}

// Each idle hook in turn; true if one made something ready.
bool scheduler::any_hook_before_sleep(runner& r)
{
  for (idle_hook* h = idle_hooks_.load(std::memory_order_acquire); h; h = h->next_hook_)
    if (h->before_sleep(r))
      return true;
  return false;
}

bool scheduler::spin_for_work(runner& r)
{
  // With other runners active (a pool, a context run by several threads),
  // work handed over between them is what a spin catches: always spin.
  // (Relaxed: a stale count only picks the other policy for one pass.)
  if (active_runners_.load(std::memory_order_relaxed) > 1)
    return submit_before_spin(r) || spin_once(r);

  // The only runner: adaptive. A socket-driven context (one connection's
  // ping-pong) finds nothing in its spins, and each would cost spin_ns of CPU
  // per message; a context fed by another thread (posts) keeps finding work
  // and keeps spinning. Owner-thread state only.
  if (r.spin_misses_ >= spin_miss_limit)
  {
    // Not spinning: the SQEs stay for the sleep, which submits and waits in
    // one enter.
    if (++r.spin_misses_ - spin_miss_limit < spin_probe_interval)
      return false;
    r.spin_misses_ = spin_miss_limit - 1;  // probe once; a miss disables again
  }
  // An inline completion of what was just submitted is not the spin's merit:
  // it neither enables nor disables spinning.
  if (submit_before_spin(r))
    return true;
  if (spin_once(r))
  {
    r.spin_misses_ = 0;
    return true;
  }
  ++r.spin_misses_;
  return false;
}

bool scheduler::submit_before_spin(runner& r)
{
  // Operations prepared by the last handlers go to the kernel before a spin,
  // which cannot see their completions otherwise. True if one completed
  // inline (a send into a socket with room): there is work, no spin needed.
  if (drv::pending(r) == 0)
    return false;
  drv::submit(r);
  return drv::completions_ready(r);
}

bool scheduler::spin_once(runner& r) noexcept
{
  const std::int64_t until = steady_now_ns() + spin_ns;
  do
  {
    for (int i = 0; i < 16; ++i)
      cpu_relax();
    // Not the ring's IORING_SQ_TASKRUN flag: the kernel can leave it set with
    // no task work queued (it sets the flag after queueing the work, and the
    // owner may run the work in between), and a spin that trusted it would
    // loop forever without reaching the sleep below. Task work that is real
    // runs when the sleep enters the kernel.
    if (inject_.maybe_nonempty_relaxed() || immediate_.maybe_nonempty_relaxed()
        || background_.maybe_nonempty_relaxed() || r.remote_.maybe_nonempty_relaxed()
        || drv::completions_ready(r) || stopped_.load(std::memory_order_relaxed)
        || others_have_work(r))
      return true;
  } while (steady_now_ns() < until);
  return false;
}

void scheduler::flush_local(runner& r) noexcept
{
  op_queue ops;
  if (r.lifo_slot_)
  {
    ops.push(r.lifo_slot_);
    r.lifo_slot_ = nullptr;
  }
  while (operation* op = r.queue_.pop())
    ops.push(op);
  if (!ops.empty())
  {
    inject_.push(ops);
    wake_one();
  }
}

bool scheduler::can_dispatch() const noexcept
{
  for (run_frame* f = current_frame; f; f = f->outer)
    if (&f->r->owner_ == this)
      return true;
  return false;
}

void scheduler::capture_current_exception()
{
  if (runner* r = this_thread_runner())
    r->info_.capture_current_exception();
}

void scheduler::stop()
{
  stopped_.store(true, std::memory_order_seq_cst);
  wake_all();
}

void scheduler::wake_one() noexcept
{
  if (num_sleeping_.load(std::memory_order_seq_cst) == 0)
    return;
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
  {
    if (r->wake_if_sleeping())
      return;
  }
}

void scheduler::wake_all() noexcept
{
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
  {
    r->wake_if_sleeping();
  }
}

void scheduler::forget_descriptor(int fd) noexcept
{
#if defined(ZOKIO_HAS_KQUEUE)
  // The kqueue of each runner may hold a note for fd; kevent is safe from
  // any thread (the poller is only read here).
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
    if (r->backend() == zokio::backend::kqueue)
      r->kqueue_driver().poller().remove(fd);
#else
  (void)fd;
#endif
}

void scheduler::post_class(operation* op, priority_class c)
{
  outstanding_work_.fetch_add(1, std::memory_order_relaxed);
  (c == priority_class::immediate ? immediate_ : background_).push(op);
  if (this_thread_runner())
    notify_idle();
  else
    wake_one();
}

void scheduler::add_timer_queue(timer_queue_base& q)
{
  std::lock_guard<std::mutex> lock(timer_queues_mutex_);
  q.next_queue_ = timer_queues_.load(std::memory_order_relaxed);
  timer_queues_.store(&q, std::memory_order_release);
}

void scheduler::remove_timer_queue(timer_queue_base& q)
{
  // Only when the context is being destroyed: no run loop walks the list.
  std::lock_guard<std::mutex> lock(timer_queues_mutex_);
  timer_queue_base* prev = nullptr;
  for (timer_queue_base* p = timer_queues_.load(std::memory_order_relaxed); p; p = p->next_queue_)
  {
    if (p == &q)
    {
      if (prev)
        prev->next_queue_ = p->next_queue_;
      else
        timer_queues_.store(p->next_queue_, std::memory_order_release);
      return;
    }
    prev = p;
  }
}

std::int64_t scheduler::next_timer_wait_ns()
{
  std::int64_t wait = no_deadline;
  for (timer_queue_base* q = timer_queues_.load(std::memory_order_acquire); q; q = q->next_queue_)
  {
    if (q->pending() == 0)
      continue;
    std::int64_t w = q->wait_ns(max_unsteady_wait_ns);
    if (w < wait)
      wait = w;
  }
  return wait;
}

operation* scheduler::pop_shared(inject_queue_type& q) noexcept
{
  if (!q.try_lock_consumer())
    return nullptr;
  operation* op = q.pop();
  q.unlock_consumer();
  return op;
}

operation* scheduler::next_ready(runner& r)
{
  // Steps other threads handed to this runner's ring (cancellations): few,
  // short, and they make an operation in this ring finish sooner.
  if (operation* op = r.pinned_.pop())
    return op;

  if (immediate_.maybe_nonempty_relaxed())
    if (operation* op = pop_shared(immediate_))
      return op;

  if (++r.since_background_ >= background_interval)
  {
    r.since_background_ = 0;
    if (background_.maybe_nonempty_relaxed())
      if (operation* op = pop_shared(background_))
        return op;
  }

  if (operation* op = r.lifo_slot_)
  {
    if (r.lifo_runs_ < lifo_limit || r.queue_.empty())
    {
      ++r.lifo_runs_;
      r.lifo_slot_ = nullptr;
      return op;
    }
    // The slot has had its turns: let the queue move.
    r.lifo_slot_ = nullptr;
    push_local(r, op);
  }
  r.lifo_runs_ = 0;
  return r.queue_.pop();
}

bool scheduler::housekeeping(runner& r, bool submit)
{
  bool got = false;

  if (r.overflowed_ && !inject_.maybe_nonempty_relaxed())
    r.overflowed_ = false; // drained (by any runner): local pushes keep FIFO order again

  if (inject_.maybe_nonempty_relaxed() && inject_.try_lock_consumer())
  {
    // Take a batch, leaving room in the local queue.
    std::size_t room = local_queue::capacity - r.queue_.size();
    std::size_t n = room < inject_batch ? room : inject_batch;
    op_queue overflow;
    std::size_t i = 0;
    for (; i < n; ++i)
    {
      operation* op = inject_.pop();
      if (op == nullptr)
        break;
      r.queue_.push(op, overflow); // room was checked; only a steal could intervene
      got = true;
    }
    if (i < n)
      r.overflowed_ = false; // drained: local pushes keep FIFO order again
    inject_.unlock_consumer();
    inject_.push(overflow);
    if (got)
      notify_idle();
  }

  // Internal steps (post_internal): they only arm something on this ring.
  if (internal_.maybe_nonempty_relaxed() && internal_.try_lock_consumer())
  {
    while (operation* op = internal_.pop())
      op->complete(*this);
    internal_.unlock_consumer();
  }

  // Work handed to this runner in particular (post_remote; only its owner
  // consumes). It acts on this runner's ring, so it goes to pinned_, which
  // nobody steals, not to the local queue. Already counted in the shared
  // count by whoever queued it; run_op finishes that unit as for any op.
  if (r.remote_.maybe_nonempty_relaxed() && r.remote_.try_lock_consumer())
  {
    while (operation* op = r.remote_.pop())
      r.pinned_.push(op);
    r.remote_.unlock_consumer();
  }

  op_queue ready;
  for (timer_queue_base* q = timer_queues_.load(std::memory_order_acquire); q; q = q->next_queue_)
  {
    if (q->pending() != 0)
      if (std::size_t n = q->get_ready(ready))
        r.timers_fired_.add(n);
  }

  drv::flush(r);
  if (drv::pending(r) != 0)
  {
    // Deferred (submit == false) when the caller is about to go idle: the
    // spin submits before it looks, the sleep submits and waits in one
    // enter. A ping-pong connection then costs two enters per message
    // (send + its inline completion, receive + wait), not three.
    if (submit)
      drv::submit(r);
  }
  else if (drv::wants_events(r, !submit))
    drv::get_events(r);
  if (drv::completions_ready(r))
    drv::reap(r, ready);

  if (!ready.empty())
  {
    push_local(r, ready);
    got = true;
  }
  return got || r.lifo_slot_ || !r.queue_.empty() || !r.pinned_.empty()
      || !r.internal_ready_.empty();
}

operation* scheduler::steal(runner& r, bool forced)
{
  int active = active_runners_.load(std::memory_order_relaxed);
  if (active <= 1)
    return nullptr;
  // At most about half the active runners search at once.
  if (!forced && 2 * num_searching_.load(std::memory_order_relaxed) >= active)
    return nullptr;
  num_searching_.fetch_add(1, std::memory_order_seq_cst);

  // Start at a random runner so thieves spread over the victims.
  int count = runner_count_.load(std::memory_order_relaxed);
  r.random_ ^= r.random_ << 13;
  r.random_ ^= r.random_ >> 17;
  r.random_ ^= r.random_ << 5;
  int skip = count > 0 ? static_cast<int>(r.random_ % static_cast<std::uint32_t>(count)) : 0;
  runner* head = runners_.load(std::memory_order_acquire);
  runner* start = head;
  for (int i = 0; i < skip && start; ++i)
    start = start->next_;
  if (start == nullptr)
    start = head;

  operation* op = nullptr;
  runner* v = start;
  do
  {
    if (v != &r && v->queue_.steal_into(r.queue_, op) != 0)
      break;
    v = v->next_ ? v->next_ : head;
  } while (v != start);

  num_searching_.fetch_sub(1, std::memory_order_seq_cst);
  if (op)
  {
    r.steals_.add();
    // More than one taken: others may be worth waking to share it.
    if (!r.queue_.empty())
      notify_idle();
  }
  return op;
}

bool scheduler::others_have_work(runner& r) const noexcept
{
  if (active_runners_.load(std::memory_order_relaxed) <= 1)
    return false;
  for (runner* v = runners_.load(std::memory_order_acquire); v; v = v->next_)
    if (v != &r && !v->queue_.empty())
      return true;
  return false;
}

void scheduler::run_op(runner& r, operation* op)
{
  // The op is one unit of outstanding work; whatever the handler started
  // privately is in private_work_. Publish the difference when the handler
  // returns, also when it throws.
  struct work_cleanup
  {
    scheduler& s;
    runner& r;
    ~work_cleanup()
    {
      // Work started privately is published at once; finished work is
      // published in batches (the shared count only stays higher meanwhile,
      // so it can never reach zero early), and before this thread sleeps
      // or leaves run().
      long balance = r.private_work_ - 1;
      if (balance > 0)
      {
        r.private_work_ = 0;
        s.outstanding_work_.fetch_add(balance, std::memory_order_relaxed);
      }
      else if (balance <= -static_cast<long>(finish_batch))
      {
        r.private_work_ = 0;
        s.work_finished(-balance);
      }
      else
      {
        r.private_work_ = balance;
      }
    }
  } cleanup{*this, r};

  r.handlers_run_.add();
  op->complete(*this);
  r.info_.rethrow_pending_exception();
}

std::size_t scheduler::run_internal(runner& r)
{
  // Internal completions carry no unit of work and are not handlers; the
  // handlers they run for another scheduler (note_foreign_handlers) are.
  r.foreign_handlers_ = 0;
  while (operation* op = r.internal_ready_.pop())
    op->complete(*this);
  std::size_t n = r.foreign_handlers_;
  r.foreign_handlers_ = 0;
  if (n)
    r.handlers_run_.add(n);
  r.info_.rethrow_pending_exception();
  return n;
}

std::size_t scheduler::do_run(run_mode mode, std::int64_t deadline_ns)
{
  if (outstanding_work_.load(std::memory_order_acquire) == 0)
  {
    stop();
    return 0;
  }

  run_frame frame;
  runner& r = enter(frame);

  // While this thread runs, Asio's recycling allocator finds r's caches.
  using asio_call_stack = boost::asio::detail::call_stack<
      boost::asio::detail::thread_context, boost::asio::detail::thread_info_base>;
  std::optional<asio_call_stack::context> call_stack_entry;
  if (r.depth_ == 1)
    call_stack_entry.emplace(&r, r.info_);

  struct leave_guard
  {
    scheduler& s;
    runner& r;
    run_frame& frame;
    ~leave_guard() { s.leave(r, frame); }
  } guard{*this, r, frame};

  const bool just_one = mode == mode_run_one || mode == mode_poll_one;
  const bool may_block = mode == mode_run || mode == mode_run_one;
  std::size_t n = 0;
  unsigned batch = 0;
  bool deferred_submit = false;  // an idle pass left SQEs to a spin or sleep

  for (;;)
  {
    if (stopped_.load(std::memory_order_relaxed))
      break;

    if (!r.internal_ready_.empty())
    {
      std::size_t ran = run_internal(r);
      n += ran;
      if (just_one && ran != 0)
        break;
    }

    operation* op = next_ready(r);
    if (op == nullptr)
    {
      // A run that may block leaves this pass's SQEs to the spin or the
      // sleep below (see housekeeping); poll() must submit them before it
      // returns.
      deferred_submit |= may_block;
      if (housekeeping(r, !may_block))
        continue;
      if (background_.maybe_nonempty_relaxed())
        op = pop_shared(background_);
      if (op == nullptr)
        op = steal(r, false);
    }
    if (op == nullptr)
    {
      if (!may_block)
        break;

      // Nothing to do here: publish the work this thread finished, so the
      // count can reach zero (and stop the other runners) even if this
      // thread keeps finding reasons not to sleep.
      publish_private(r);

      // Work often arrives within microseconds (another thread feeding this
      // one): look a little longer before paying for a sleep and a wake-up.
      if (spin_for_work(r))
        continue;
      if (any_hook_before_sleep(r))
        continue;

      // Sleep. Publish finished work first (the count may reach zero and
      // stop the scheduler), announce the sleep, then look again (see the
      // protocol at the top of scheduler.hpp).
      publish_private(r);
      if (stopped_.load(std::memory_order_relaxed))
        break;
      const bool wake_armed = drv::prepare_sleep(r);
      r.sleeping_.store(true, std::memory_order_seq_cst);
      num_sleeping_.fetch_add(1, std::memory_order_seq_cst); // pairs with notify_idle's fence
      struct sleeping_guard
      {
        scheduler& s;
        runner& r;
        ~sleeping_guard()
        {
          s.num_sleeping_.fetch_sub(1, std::memory_order_seq_cst);
          r.sleeping_.store(false, std::memory_order_relaxed);
        }
      };
      {
        sleeping_guard awake{*this, r};
        // (remote_ pairs with post_remote, which pushes and then reads
        // this runner's sleeping_ flag, both seq_cst.)
        if (inject_.maybe_nonempty() || immediate_.maybe_nonempty()
            || background_.maybe_nonempty() || r.remote_.maybe_nonempty()
            || internal_.maybe_nonempty() || stopped_.load(std::memory_order_seq_cst))
          continue;
        if (others_have_work(r))
        {
          // Work exists on a busy runner: one forced steal attempt, then
          // sleep if it failed (its owner runs it; nothing is lost).
          op = steal(r, true);
        }
        if (op == nullptr)
        {
          std::int64_t wait = next_timer_wait_ns();
          if (deadline_ns != no_deadline)
          {
            std::int64_t left = deadline_ns - steady_now_ns();
            if (left <= 0)
              break;
            if (left < wait)
              wait = left;
          }
          if (!wake_armed && wait > 1'000'000)
            wait = 1'000'000; // no wake-up read in the ring: poll every millisecond
          if (wait > 0)
            drv::sleep(r, wait);
        }
      }
      if (op == nullptr)
      {
        op_queue reaped;
        drv::reap(r, reaped);
        push_local(r, reaped);
        continue;
      }
    }

    run_op(r, op);
    ++n;
    if (just_one)
      break;
    if (++batch == handler_batch)
    {
      batch = 0;
      housekeeping(r);
      if (deadline_ns != no_deadline && steady_now_ns() >= deadline_ns)
        break;
    }
  }
  // Leaving without the sleep (stopped, deadline, run_one): what an idle
  // pass deferred goes to the kernel now, as it would have then.
  if (deferred_submit && drv::pending(r) != 0)
    drv::submit(r);
  return n;
}

zokio::statistics scheduler::statistics() const
{
  zokio::statistics s;
  s.backend = backend_;
  for (runner* r = runners_.load(std::memory_order_acquire); r; r = r->next_)
  {
    s.submissions += r->submissions_.get();
    s.kernel_entries += r->kernel_entries_.get();
    s.completions += r->completions_.get();
    s.batches += r->batches_.get();
    if (r->max_batch_.get() > s.max_batch)
      s.max_batch = r->max_batch_.get();
    s.handlers_run += r->handlers_run_.get();
    s.sleeps += r->sleeps_.get();
    s.wakeups += r->wakeups_.get();
    s.timers_fired += r->timers_fired_.get();
    s.rings += r->rings_.get();
    s.steals += r->steals_.get();
    s.blocking_calls += r->blocking_calls_.get();
  }
  s.blocking_threads = blocking_pool::instance().threads();
  return s;
}

} // namespace detail
} // namespace zokio
