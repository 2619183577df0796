// zokio/detail/timer/timer_queue.hpp: the pending waits of one clock type.
//
// Design (measured, see perf/scenarios/timer_storm): a user-space index of
// timers ordered by expiry (expiry_index.hpp) under a single kernel wait. The run loop
// sleeps in io_uring_enter with a timeout equal to the time left before the
// earliest expiry (EXT_ARG, linux 5.11, so no SQE per timer), and on waking
// moves every expired wait to its ready queue in one locked pass. Arming a
// timer therefore costs an index insertion and no system call, where one
// IORING_OP_TIMEOUT per timer would cost an SQE, a kernel hrtimer and a CQE.
//
// Each timer object owns one per_timer_data naming a slot of the queue; the
// index holds one live entry per timer that has waits pending (as in Asio),
// so many waits on one timer share an entry and complete together, in the
// order they were started.
//
// Threads: every member runs under the queue's mutex except the lock-free
// due() check, which reads the cached earliest expiry.
#ifndef ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP
#define ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP

#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/timer/expiry_index.hpp>
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

// A timer's link to its queue: the index of its slot, allocated by the queue
// on the timer's first wait and released when the timer is destroyed.
// Embedded in the timer object's implementation; only the queue reads it,
// under the queue's mutex.
class per_timer_data
{
public:
  per_timer_data() noexcept = default;
  per_timer_data(const per_timer_data&) = delete;
  per_timer_data& operator=(const per_timer_data&) = delete;

private:
  template <typename, typename> friend class timer_queue;

  static constexpr std::uint32_t no_slot = static_cast<std::uint32_t>(-1);
  std::uint32_t slot_ = no_slot;
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
    if (timer.slot_ == per_timer_data::no_slot)
      timer.slot_ = allocate_slot();
    slot& s = slots_[timer.slot_];
    bool earliest = false;
    if (s.first_ == nullptr)
    {
      // The timer becomes armed: a new generation, and an entry for it.
      ++s.gen_;
      std::int64_t t = to_ns(expiry);
      earliest = t < earliest_ns_.load(std::memory_order_relaxed);
      index_.push(timer_entry{t, timer.slot_, s.gen_});
    }
    op->next_wait_ = nullptr;
    op->prev_wait_ = s.last_;
    if (s.last_)
      s.last_->next_wait_ = op;
    else
      s.first_ = op;
    s.last_ = op;
    pending_.fetch_add(1, std::memory_order_relaxed);
    // A new earliest expiry is known exactly without consulting the index
    // (whose top() would sort the next bucket ahead of time).
    if (earliest)
      earliest_ns_.store(to_ns(expiry), std::memory_order_release);
    return earliest;
  }

  // True if timer has waits pending. Locked.
  bool has_waits(const per_timer_data& timer) const noexcept
  {
    return timer.slot_ != per_timer_data::no_slot && slots_[timer.slot_].first_ != nullptr;
  }

  // True if no other timer expires before expiry (an already-due wait with
  // this expiry may then bypass the queue without reordering). Locked.
  bool is_before_all(const time_point& expiry) const noexcept
  {
    return to_ns(expiry) < earliest_ns_.load(std::memory_order_relaxed);
  }

  // Moves up to max waits of timer to ops as cancelled. Locked.
  std::size_t cancel_timer(per_timer_data& timer, op_queue& ops,
      std::size_t max = static_cast<std::size_t>(-1))
  {
    if (timer.slot_ == per_timer_data::no_slot)
      return 0;
    slot& s = slots_[timer.slot_];
    std::size_t n = 0;
    while (n < max && s.first_)
    {
      wait_op* op = s.first_;
      unlink(s, op);
      op->ec_ = boost::asio::error::operation_aborted;
      ops.push(op);
      ++n;
    }
    if (n)
    {
      pending_.fetch_sub(n, std::memory_order_relaxed);
      if (!s.first_)
        disarm(s);
    }
    return n;
  }

  // Cancels the wait of timer whose cancellation key is key, if still
  // pending. Locked.
  bool cancel_by_key(per_timer_data& timer, void* key, op_queue& ops)
  {
    if (timer.slot_ == per_timer_data::no_slot)
      return false;
    slot& s = slots_[timer.slot_];
    for (wait_op* op = s.first_; op; op = op->next_wait_)
    {
      if (op->cancellation_key_ == key)
      {
        unlink(s, op);
        op->ec_ = boost::asio::error::operation_aborted;
        ops.push(op);
        pending_.fetch_sub(1, std::memory_order_relaxed);
        if (!s.first_)
          disarm(s);
        return true;
      }
    }
    return false;
  }

  // Moves the queue registration of from (with its pending waits) to to,
  // which must have none. Locked.
  void move_timer(per_timer_data& to, per_timer_data& from) noexcept
  {
    to.slot_ = from.slot_;
    from.slot_ = per_timer_data::no_slot;
  }

  // Gives back the slot of a timer being destroyed (after its waits were
  // cancelled). Locked.
  void release(per_timer_data& timer) noexcept
  {
    if (timer.slot_ == per_timer_data::no_slot)
      return;
    slot& s = slots_[timer.slot_];
    ++s.gen_; // any entry left for this slot is stale from now on
    s.next_free_ = free_;
    free_ = timer.slot_;
    timer.slot_ = per_timer_data::no_slot;
  }

  // Moves every pending wait to ops without completing it (shutdown). Locked.
  void take_all(op_queue& ops)
  {
    for (slot& s : slots_)
    {
      while (wait_op* op = s.first_)
      {
        unlink(s, op);
        ops.push(op);
      }
      ++s.gen_;
    }
    index_.clear();
    stale_ = 0;
    pending_.store(0, std::memory_order_relaxed);
    publish_earliest();
  }

private:
  // The waits of one timer, and the generation that tells its current entry
  // from stale ones. A slot is armed (has a live entry) exactly when first_
  // is not null.
  //
  // Entries name slots, not timers: ordering moves 16-byte entries within the
  // index's own arrays and never writes into timer objects spread over the
  // address space. Cancelling leaves the entry in place, stale (its gen no
  // longer matches the slot's); stale entries are skipped when they come up,
  // and removed in one pass when they outnumber live ones.
  struct slot
  {
    wait_op* first_ = nullptr;        // oldest pending wait
    wait_op* last_ = nullptr;         // newest pending wait
    std::uint32_t gen_ = 0;           // bumped on every arm, disarm and release
    std::uint32_t next_free_ = 0;     // free list link while unused
  };

  // Remove stale entries once this many exist (and they are the majority).
  // Arbitrary: small enough to bound the memory of cancel-heavy timers
  // (idle timeouts reset per message), large enough to amortise the O(n)
  // pass.
  static constexpr std::size_t compact_threshold = ZOKIO_CAPACITY(1024, 4);

  // Expired entries handled per batch in get_ready: their slots and first
  // waits are prefetched together, so the cache misses overlap.
  static constexpr std::size_t ready_batch = 32;

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

  std::uint32_t allocate_slot()
  {
    if (free_ != none)
    {
      std::uint32_t i = free_;
      free_ = slots_[i].next_free_;
      return i;
    }
    slots_.emplace_back();
    return static_cast<std::uint32_t>(slots_.size() - 1);
  }

  static void unlink(slot& s, wait_op* op) noexcept
  {
    if (op->prev_wait_)
      op->prev_wait_->next_wait_ = op->next_wait_;
    else
      s.first_ = op->next_wait_;
    if (op->next_wait_)
      op->next_wait_->prev_wait_ = op->prev_wait_;
    else
      s.last_ = op->prev_wait_;
    op->next_wait_ = op->prev_wait_ = nullptr;
  }

  bool is_stale(const timer_entry& e) const noexcept { return slots_[e.slot].gen_ != e.gen; }

  // The slot lost its last wait: its entry goes stale.
  void disarm(slot& s)
  {
    ++s.gen_;
    ++stale_;
    if (stale_ >= compact_threshold && stale_ * 2 > index_.size())
    {
      index_.remove_if([this](const timer_entry& e) { return is_stale(e); });
      stale_ = 0;
    }
    publish_earliest();
  }

  // Publishes the earliest live expiry, dropping stale entries on the way.
  void publish_earliest()
  {
    std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
    while (!index_.empty())
    {
      const timer_entry& e = index_.top();
      if (!is_stale(e))
      {
        earliest = e.time;
        break;
      }
      index_.pop();
      --stale_;
    }
    earliest_ns_.store(earliest, std::memory_order_release);
  }

  static std::size_t do_get_ready(timer_queue_base* base, op_queue& ops)
  {
    auto* self = static_cast<timer_queue*>(base);
    if (self->earliest_ns_.load(std::memory_order_acquire) > to_ns(Clock::now()))
      return 0;
    std::lock_guard<std::mutex> lock(self->mutex_);
    const std::int64_t now = to_ns(Clock::now());
    std::size_t n = 0;
    timer_entry batch[ready_batch];
    for (;;)
    {
      // Take up to a batch of expired entries, in order.
      std::size_t k = 0;
      while (k < ready_batch && !self->index_.empty())
      {
        const timer_entry& e = self->index_.top();
        if (e.time > now)
          break;
        batch[k] = e;
        self->index_.pop();
        __builtin_prefetch(&self->slots_[batch[k].slot]);
        ++k;
      }
      if (k == 0)
        break;
      for (std::size_t i = 0; i < k; ++i)
      {
        const slot& s = self->slots_[batch[i].slot];
        if (s.gen_ == batch[i].gen)
          __builtin_prefetch(s.first_, 1);
      }
      for (std::size_t i = 0; i < k; ++i)
      {
        slot& s = self->slots_[batch[i].slot];
        if (s.gen_ != batch[i].gen)
        {
          --self->stale_;
          continue;
        }
        // Hand the whole list over: the waits complete in the order started.
        while (wait_op* op = s.first_)
        {
          s.first_ = op->next_wait_;
          op->next_wait_ = op->prev_wait_ = nullptr;
          op->ec_ = boost::system::error_code();
          ops.push(op);
          ++n;
        }
        s.last_ = nullptr;
        ++s.gen_;
      }
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

  static constexpr std::uint32_t none = static_cast<std::uint32_t>(-1);

  std::mutex mutex_;
  expiry_index index_;
  std::vector<slot> slots_;
  std::uint32_t free_ = none;   // head of the free slot list
  std::size_t stale_ = 0;       // entries in index_ whose slot moved on
  // Earliest live expiry in nanoseconds since the clock's epoch (max when
  // none), written under the mutex, read without it by the run loop.
  std::atomic<std::int64_t> earliest_ns_{std::numeric_limits<std::int64_t>::max()};
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_TIMER_QUEUE_HPP
