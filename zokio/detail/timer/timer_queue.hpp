// zokio/detail/timer/timer_queue.hpp: the pending waits of one clock type.
//
// Design (measured, see perf/scenarios/timer_storm): a user-space 4-ary heap
// of timers, ordered by expiry, under a single kernel wait. The run loop
// sleeps in io_uring_enter with a timeout equal to the time left before the
// earliest expiry (EXT_ARG, linux 5.11, so no SQE per timer), and on waking
// moves every expired wait to its ready queue in one locked pass. Arming a
// timer therefore costs a heap insertion and no system call, where one
// IORING_OP_TIMEOUT per timer would cost an SQE, a kernel hrtimer and a CQE.
//
// Each timer object owns one per_timer_data; the heap holds one entry per
// timer that has waits pending (as in Asio), so many waits on one timer share
// a heap slot and complete together, in the order they were started.
//
// Threads: every member runs under the queue's mutex except the lock-free
// due() check, which reads the cached earliest expiry.
#ifndef ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP
#define ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP

#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/timer/wait_op.hpp>

#include <boost/asio/error.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

namespace zokio {
namespace detail {

// A timer's link to its queue. Embedded in the timer object's implementation.
class per_timer_data
{
public:
  per_timer_data() noexcept = default;
  per_timer_data(const per_timer_data&) = delete;
  per_timer_data& operator=(const per_timer_data&) = delete;

  bool has_waits() const noexcept { return first_ != nullptr; }

private:
  template <typename, typename> friend class timer_queue;

  static constexpr std::size_t not_queued = static_cast<std::size_t>(-1);

  void push_wait(wait_op* op) noexcept
  {
    op->next_wait_ = nullptr;
    op->prev_wait_ = last_;
    if (last_)
      last_->next_wait_ = op;
    else
      first_ = op;
    last_ = op;
  }

  void remove_wait(wait_op* op) noexcept
  {
    if (op->prev_wait_)
      op->prev_wait_->next_wait_ = op->next_wait_;
    else
      first_ = op->next_wait_;
    if (op->next_wait_)
      op->next_wait_->prev_wait_ = op->prev_wait_;
    else
      last_ = op->prev_wait_;
    op->next_wait_ = op->prev_wait_ = nullptr;
  }

  std::size_t heap_index_ = not_queued; // slot in the heap while waits pend
  wait_op* first_ = nullptr;            // oldest pending wait
  wait_op* last_ = nullptr;             // newest pending wait
};

// What the run loop needs from a timer queue, without knowing its clock.
// Function pointers rather than virtual functions: the loop calls them in
// its housekeeping pass.
class timer_queue_base
{
public:
  // Moves every wait that has expired by now to ops. Returns how many.
  std::size_t get_ready(op_queue& ops) { return get_ready_(this, ops); }

  // Nanoseconds until the earliest expiry: 0 when one is due, max when the
  // queue is empty. Capped at max_wait_ns for clocks that are not steady.
  std::int64_t wait_ns(std::int64_t max_wait_ns) { return wait_ns_(this, max_wait_ns); }

  // Number of pending waits (any thread; relaxed).
  std::size_t pending() const noexcept { return pending_.load(std::memory_order_relaxed); }

  timer_queue_base* next_queue_ = nullptr; // in the scheduler's list

protected:
  using get_ready_func = std::size_t (*)(timer_queue_base*, op_queue&);
  using wait_ns_func = std::int64_t (*)(timer_queue_base*, std::int64_t);

  timer_queue_base(get_ready_func g, wait_ns_func w) noexcept : get_ready_(g), wait_ns_(w) {}
  ~timer_queue_base() = default;

  std::atomic<std::size_t> pending_{0};

private:
  get_ready_func get_ready_;
  wait_ns_func wait_ns_;
};

template <typename Clock, typename WaitTraits>
class timer_queue : public timer_queue_base
{
public:
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  timer_queue() noexcept : timer_queue_base(&do_get_ready, &do_wait_ns) {}

  std::mutex& mutex() noexcept { return mutex_; }

  // Adds op as a wait on timer, which expires at expiry. Returns true when
  // this timer is now the earliest of the queue (the caller may have to wake
  // a sleeping run loop). Locked.
  bool enqueue(const time_point& expiry, per_timer_data& timer, wait_op* op)
  {
    if (timer.heap_index_ == per_timer_data::not_queued)
    {
      timer.heap_index_ = heap_.size();
      heap_.push_back(entry{expiry, &timer});
      sift_up(timer.heap_index_);
    }
    timer.push_wait(op);
    pending_.fetch_add(1, std::memory_order_relaxed);
    bool earliest = heap_[0].timer == &timer;
    if (earliest)
      publish_earliest();
    return earliest;
  }

  // Reserves heap capacity (no allocation while enqueueing up to n timers).
  void reserve(std::size_t n) { heap_.reserve(n); }

  // True if no other timer expires before expiry (an already-due wait with
  // this expiry may then bypass the heap without reordering). Locked.
  bool is_before_all(const time_point& expiry) const noexcept
  {
    return heap_.empty() || expiry < heap_[0].time;
  }

  // Moves up to max waits of timer to ops as cancelled. Locked.
  std::size_t cancel_timer(per_timer_data& timer, op_queue& ops,
      std::size_t max = static_cast<std::size_t>(-1))
  {
    std::size_t n = 0;
    while (n < max && timer.first_)
    {
      wait_op* op = timer.first_;
      timer.remove_wait(op);
      op->ec_ = boost::asio::error::operation_aborted;
      ops.push(op);
      ++n;
    }
    if (n)
    {
      pending_.fetch_sub(n, std::memory_order_relaxed);
      if (!timer.first_)
        remove_timer(timer);
    }
    return n;
  }

  // Cancels the wait of timer whose cancellation key is key, if still
  // pending. Locked.
  bool cancel_by_key(per_timer_data& timer, void* key, op_queue& ops)
  {
    for (wait_op* op = timer.first_; op; op = op->next_wait_)
    {
      if (op->cancellation_key_ == key)
      {
        timer.remove_wait(op);
        op->ec_ = boost::asio::error::operation_aborted;
        ops.push(op);
        pending_.fetch_sub(1, std::memory_order_relaxed);
        if (!timer.first_)
          remove_timer(timer);
        return true;
      }
    }
    return false;
  }

  // Moves the queue registration of from (with its pending waits) to to,
  // which must have none. Locked.
  void move_timer(per_timer_data& to, per_timer_data& from) noexcept
  {
    to.first_ = from.first_;
    to.last_ = from.last_;
    to.heap_index_ = from.heap_index_;
    from.first_ = from.last_ = nullptr;
    from.heap_index_ = per_timer_data::not_queued;
    if (to.heap_index_ != per_timer_data::not_queued)
      heap_[to.heap_index_].timer = &to;
  }

  // Moves every pending wait to ops without completing it (shutdown). Locked.
  void take_all(op_queue& ops)
  {
    for (entry& e : heap_)
    {
      while (wait_op* op = e.timer->first_)
      {
        e.timer->remove_wait(op);
        ops.push(op);
      }
      e.timer->heap_index_ = per_timer_data::not_queued;
    }
    heap_.clear();
    pending_.store(0, std::memory_order_relaxed);
    publish_earliest();
  }

private:
  struct entry
  {
    time_point time;
    per_timer_data* timer;
  };

  // Children of slot i are 4i+1 .. 4i+4: half the depth of a binary heap, and
  // the four children of a slot share one or two cache lines, which matters
  // once a million timers no longer fit in cache.
  static constexpr std::size_t arity = 4;

  static std::int64_t to_ns(const time_point& t) noexcept
  {
    using namespace std::chrono;
    auto d = t.time_since_epoch();
    if (d >= duration_cast<duration>(nanoseconds::max()))
      return std::numeric_limits<std::int64_t>::max();
    if (d <= duration_cast<duration>(nanoseconds::min()))
      return std::numeric_limits<std::int64_t>::min();
    return duration_cast<nanoseconds>(d).count();
  }

  void publish_earliest() noexcept
  {
    earliest_ns_.store(heap_.empty() ? std::numeric_limits<std::int64_t>::max()
        : to_ns(heap_[0].time), std::memory_order_release);
  }

  void swap_slots(std::size_t a, std::size_t b) noexcept
  {
    entry tmp = heap_[a];
    heap_[a] = heap_[b];
    heap_[b] = tmp;
    heap_[a].timer->heap_index_ = a;
    heap_[b].timer->heap_index_ = b;
  }

  void sift_up(std::size_t i) noexcept
  {
    entry moving = heap_[i];
    while (i > 0)
    {
      std::size_t parent = (i - 1) / arity;
      if (!(moving.time < heap_[parent].time))
        break;
      heap_[i] = heap_[parent];
      heap_[i].timer->heap_index_ = i;
      i = parent;
    }
    heap_[i] = moving;
    moving.timer->heap_index_ = i;
  }

  void sift_down(std::size_t i) noexcept
  {
    const std::size_t n = heap_.size();
    entry moving = heap_[i];
    for (;;)
    {
      std::size_t first = i * arity + 1;
      if (first >= n)
        break;
      std::size_t last = first + arity < n ? first + arity : n;
      std::size_t best = first;
      for (std::size_t c = first + 1; c < last; ++c)
        if (heap_[c].time < heap_[best].time)
          best = c;
      if (!(heap_[best].time < moving.time))
        break;
      heap_[i] = heap_[best];
      heap_[i].timer->heap_index_ = i;
      i = best;
    }
    heap_[i] = moving;
    moving.timer->heap_index_ = i;
  }

  void remove_timer(per_timer_data& timer) noexcept
  {
    std::size_t i = timer.heap_index_;
    if (i == per_timer_data::not_queued)
      return;
    std::size_t last = heap_.size() - 1;
    if (i != last)
    {
      swap_slots(i, last);
      heap_.pop_back();
      if (i > 0 && heap_[i].time < heap_[(i - 1) / arity].time)
        sift_up(i);
      else
        sift_down(i);
    }
    else
    {
      heap_.pop_back();
    }
    timer.heap_index_ = per_timer_data::not_queued;
    if (i == 0)
      publish_earliest();
  }

  static std::size_t do_get_ready(timer_queue_base* base, op_queue& ops)
  {
    auto* self = static_cast<timer_queue*>(base);
    if (self->earliest_ns_.load(std::memory_order_acquire) > to_ns(Clock::now()))
      return 0;
    std::lock_guard<std::mutex> lock(self->mutex_);
    const time_point now = Clock::now();
    std::size_t n = 0;
    while (!self->heap_.empty() && !(now < self->heap_[0].time))
    {
      per_timer_data& timer = *self->heap_[0].timer;
      while (wait_op* op = timer.first_)
      {
        timer.remove_wait(op);
        op->ec_ = boost::system::error_code();
        ops.push(op);
        ++n;
      }
      // Pop the root: move the last slot up and sift it down.
      std::size_t last = self->heap_.size() - 1;
      if (last > 0)
      {
        self->heap_[0] = self->heap_[last];
        self->heap_[0].timer->heap_index_ = 0;
        self->heap_.pop_back();
        self->sift_down(0);
      }
      else
      {
        self->heap_.pop_back();
      }
      timer.heap_index_ = per_timer_data::not_queued;
    }
    self->pending_.fetch_sub(n, std::memory_order_relaxed);
    self->publish_earliest();
    return n;
  }

  static std::int64_t do_wait_ns(timer_queue_base* base, std::int64_t max_wait_ns)
  {
    auto* self = static_cast<timer_queue*>(base);
    std::int64_t earliest = self->earliest_ns_.load(std::memory_order_acquire);
    if (earliest == std::numeric_limits<std::int64_t>::max())
      return std::numeric_limits<std::int64_t>::max();
    // Let the clock's wait traits shape the wait, as Asio does.
    duration left = time_point(std::chrono::duration_cast<duration>(
          std::chrono::nanoseconds(earliest))) - Clock::now();
    auto wait = WaitTraits::to_wait_duration(left);
    if (wait <= decltype(wait)::zero())
      return 0;
    std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    // Round a sub-nanosecond remainder up so the loop never wakes early.
    if (std::chrono::nanoseconds(ns) < wait)
      ++ns;
    if (!Clock::is_steady && ns > max_wait_ns)
      ns = max_wait_ns;
    return ns;
  }

  std::mutex mutex_;
  std::vector<entry> heap_;
  // Earliest expiry in nanoseconds since the clock's epoch (max when empty),
  // written under the mutex, read without it by the run loop's due check.
  std::atomic<std::int64_t> earliest_ns_{std::numeric_limits<std::int64_t>::max()};
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP
