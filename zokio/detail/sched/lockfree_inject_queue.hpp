// zokio/detail/sched/lockfree_inject_queue.hpp: the inject queue's interface
// on boost::lockfree::queue, for measuring the library against the
// hand-written queue (inject_queue.hpp). Not the default: a build defines
// ZOKIO_INJECT_QUEUE_LOCKFREE to use it (the harness's zokio_lockfree
// column, perf/CMakeLists.txt); the README's "Boost.Lockfree" paragraph
// gives the figures that keep the hand-written queue the default.
#ifndef ZOKIO_DETAIL_SCHED_LOCKFREE_INJECT_QUEUE_HPP
#define ZOKIO_DETAIL_SCHED_LOCKFREE_INJECT_QUEUE_HPP

#include <zokio/detail/operation.hpp>
#include <zokio/detail/sched/op_queue.hpp>

#include <boost/lockfree/queue.hpp>

#include <atomic>
#include <cstddef>

namespace zokio {
namespace detail {

// Michael and Scott's queue (Boost.Lockfree) of operation pointers, with the
// same consumer lock as inject_queue so that the scheduler's use of it (one
// consumer at a time taking a batch in order) is unchanged and only the
// structure differs.
//
// Producers: any thread. push() is the library's CAS loop on the tail and
// takes a node from the queue's free list; the free list starts with
// reserved_nodes and grows (a heap allocation) only when more operations are
// queued at once than it has ever held, so a steady state allocates nothing.
// Consumers: any thread holding the consumer lock. The queue owns what it
// holds; destroying it destroys the operations still queued.
//
// Memory ordering: the library publishes each pointer with release and reads
// it with acquire. Its operations are not seq_cst, so the sleep/wake
// handshake (scheduler.hpp) gets its own seq_cst access: count_ is
// incremented seq_cst after the push and maybe_nonempty() loads it seq_cst.
// A pop may run before the push's increment (count_ briefly -1); "not zero"
// then reads as "maybe", which costs a look and never hides work.
class lockfree_inject_queue
{
public:
  static constexpr std::size_t reserved_nodes = 256;

  lockfree_inject_queue() : queue_(reserved_nodes) {}
  lockfree_inject_queue(const lockfree_inject_queue&) = delete;
  lockfree_inject_queue& operator=(const lockfree_inject_queue&) = delete;

  ~lockfree_inject_queue()
  {
    // Single-threaded by now: no producer may run concurrently.
    while (operation* op = pop())
      op->destroy();
  }

  // Pushes one operation. Any thread. noexcept as inject_queue's: a free
  // list that must grow with the heap exhausted terminates.
  void push(operation* op) noexcept
  {
    queue_.push(op);
    count_.fetch_add(1, std::memory_order_seq_cst);
  }

  // Pushes every operation of ops, keeping their order (one CAS each: the
  // library has no chain push; other producers' operations may interleave).
  void push(op_queue& ops) noexcept
  {
    while (operation* op = ops.pop())
      push(op);
  }

  bool maybe_nonempty() const noexcept
  {
    return count_.load(std::memory_order_seq_cst) != 0;
  }

  bool maybe_nonempty_relaxed() const noexcept
  {
    return count_.load(std::memory_order_relaxed) != 0;
  }

  bool try_lock_consumer() noexcept
  {
    return !consumer_.exchange(true, std::memory_order_acquire);
  }

  void unlock_consumer() noexcept
  {
    consumer_.store(false, std::memory_order_release);
  }

  // Pops one operation, or null. Only with the consumer lock held.
  operation* pop() noexcept
  {
    operation* op = nullptr;
    if (!queue_.pop(op))
      return nullptr;
    count_.fetch_sub(1, std::memory_order_relaxed);
    return op;
  }

  std::size_t pop_into(op_queue& out, std::size_t max) noexcept
  {
    std::size_t n = 0;
    while (n < max)
    {
      operation* op = pop();
      if (op == nullptr)
        break;
      out.push(op);
      ++n;
    }
    return n;
  }

private:
  boost::lockfree::queue<operation*> queue_;
  alignas(64) std::atomic<long> count_{0};
  std::atomic<bool> consumer_{false};
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_LOCKFREE_INJECT_QUEUE_HPP
