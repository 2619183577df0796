// zokio/detail/sched/local_queue.hpp: a runner's bounded queue of ready
// operations, from which idle runners steal.
#ifndef ZOKIO_DETAIL_SCHED_LOCAL_QUEUE_HPP
#define ZOKIO_DETAIL_SCHED_LOCAL_QUEUE_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/operation.hpp>
#include <zokio/detail/sched/op_queue.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zokio {
namespace detail {

// Fixed-capacity ring of operation pointers. One owner thread pushes at the
// tail and pops at the head, so its handlers run in the order they were
// queued (FIFO, as Asio users expect of a context run by one thread); any
// number of thieves take half of the queue at a time, also from the head.
//
// head_ packs two 32-bit indices: `real`, the next entry to take, and
// `steal`, the first entry a thief is still copying. Outside a steal they
// are equal. A thief claims entries by moving `real` forward (CAS) while
// leaving `steal` behind, copies them, then moves `steal` up to `real`
// (CAS); meanwhile the owner may keep popping from `real`, but may not push
// into the claimed entries, since the capacity check counts from `steal`.
// At most one steal is in flight per queue.
//
// Memory ordering: the owner publishes an entry with a release store of
// tail_ after writing it; takers read tail_ with acquire before reading
// entries. Takers claim with acq_rel CAS on head_, which orders their reads of
// the claimed entries before the owner can see the slots as free (the owner
// reads head_ with acquire before overwriting a slot). Indices are unsigned
// 32-bit and wrap; differences are taken modulo 2^32 and capacity is far
// below that.
class local_queue
{
public:
  // Arbitrary, as Tokio's: enough to absorb a burst of posts from one
  // handler without touching the shared queue, small enough (2 KiB) to scan
  // and to steal from cheaply.
  static constexpr std::uint32_t capacity = ZOKIO_CAPACITY(256, 4);

  local_queue() noexcept = default;
  local_queue(const local_queue&) = delete;
  local_queue& operator=(const local_queue&) = delete;

  // Destroys what is left (single-threaded by then).
  ~local_queue()
  {
    while (operation* op = pop())
      op->destroy();
  }

  // Entries queued (approximate when other threads are stealing).
  std::uint32_t size() const noexcept
  {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    return t - real(h);
  }

  bool empty() const noexcept { return size() == 0; }

  // Owner: appends op, or, if the queue is full, puts it in overflow and
  // returns false. (Unlike Tokio's queue, which moves its older half out,
  // this keeps the oldest entries local so that they still run first: the
  // caller sends overflow, and everything after it, to the shared queue.)
  bool push(operation* op, op_queue& overflow) noexcept
  {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - steal(h) < capacity)
    {
      buffer_[t & mask].store(op, std::memory_order_relaxed);
      tail_.store(t + 1, std::memory_order_release);
      return true;
    }
    overflow.push(op);
    return false;
  }

  // Owner: takes the oldest entry, or null.
  operation* pop() noexcept
  {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    for (;;)
    {
      std::uint32_t r = real(h);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (r == t)
        return nullptr;
      std::uint32_t s = steal(h);
      // Move `real` past the entry; `steal` follows unless a steal is in flight.
      std::uint64_t next = s == r ? pack(r + 1, r + 1) : pack(s, r + 1);
      if (head_.compare_exchange_weak(h, next, std::memory_order_acq_rel, std::memory_order_acquire))
        return buffer_[r & mask].load(std::memory_order_relaxed);
    }
  }

  // Thief: moves about half of this queue into dst (owned by the caller, and
  // empty). Returns the number moved; one of them is returned through first
  // (to run at once) and the rest are in dst.
  std::uint32_t steal_into(local_queue& dst, operation*& first) noexcept
  {
    first = nullptr;
    std::uint64_t h = head_.load(std::memory_order_acquire);
    std::uint32_t n;
    std::uint32_t from;
    for (;;)
    {
      std::uint32_t s = steal(h);
      std::uint32_t r = real(h);
      if (s != r)
        return 0; // another thief is at work here
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      n = t - r;
      n -= n / 2;
      if (n == 0)
        return 0;
      if (head_.compare_exchange_weak(h, pack(s, r + n), std::memory_order_acq_rel, std::memory_order_acquire))
      {
        from = r;
        break;
      }
    }

    // Copy the claimed entries; dst is empty and owned by the caller.
    std::uint32_t dt = dst.tail_.load(std::memory_order_relaxed);
    first = buffer_[from & mask].load(std::memory_order_relaxed);
    for (std::uint32_t i = 1; i < n; ++i)
      dst.buffer_[(dt + i - 1) & mask].store(
          buffer_[(from + i) & mask].load(std::memory_order_relaxed), std::memory_order_relaxed);

    // Release the claim: `steal` catches up with `real`.
    h = head_.load(std::memory_order_acquire);
    for (;;)
    {
      std::uint64_t next = pack(real(h), real(h));
      if (head_.compare_exchange_weak(h, next, std::memory_order_acq_rel, std::memory_order_acquire))
        break;
    }
    if (n > 1)
      dst.tail_.store(dt + n - 1, std::memory_order_release);
    return n;
  }

private:
  static constexpr std::uint32_t mask = capacity - 1;
  static_assert((capacity & mask) == 0, "capacity must be a power of two");

  static std::uint32_t steal(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 32); }
  static std::uint32_t real(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h); }
  static std::uint64_t pack(std::uint32_t s, std::uint32_t r) noexcept
  {
    return (static_cast<std::uint64_t>(s) << 32) | r;
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};   // pack(steal, real): takers' end
  alignas(64) std::atomic<std::uint32_t> tail_{0};   // owner's end
  // Entries are atomics only so that a thief's copy and the owner's
  // overwrite of a slot are formally data-race free; the index protocol
  // already keeps them apart.
  std::atomic<operation*> buffer_[capacity] = {};
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_LOCAL_QUEUE_HPP
