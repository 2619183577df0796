// zokio/detail/sched/inject_queue.hpp: the queue through which other threads
// hand operations to a scheduler.
#ifndef ZOKIO_DETAIL_SCHED_INJECT_QUEUE_HPP
#define ZOKIO_DETAIL_SCHED_INJECT_QUEUE_HPP

#include <zokio/detail/operation.hpp>
#include <zokio/detail/sched/op_queue.hpp>

#include <atomic>
#include <cstddef>

namespace zokio {
namespace detail {

// Intrusive multi-producer queue (D. Vyukov's algorithm) with a consumer lock.
//
// Producers: any thread. push() is one atomic exchange plus one release store,
// never blocks and never allocates (the operation's own next_ is the link).
// Consumers: any thread holding the consumer lock (try_lock_consumer); with a
// single running thread the lock is never contended. The queue owns what it
// holds; destroying it destroys the operations still queued.
//
// Memory ordering: push publishes the operation with the acq_rel exchange on
// tail_ and links it with a release store into the predecessor's next_; the
// consumer reads next_ with acquire, so everything written to the operation
// before push() is visible to the thread that pops it. Between a producer's
// exchange and its link store the chain is briefly broken; pop() then reports
// "nothing yet" and maybe_nonempty() still says true, so a consumer never
// sleeps on a queue that holds work.
class inject_queue
{
public:
  inject_queue() noexcept : tail_(&stub_), head_(&stub_) {}
  inject_queue(const inject_queue&) = delete;
  inject_queue& operator=(const inject_queue&) = delete;

  ~inject_queue()
  {
    // Single-threaded by now: no producer may run concurrently.
    while (operation* op = pop())
      op->destroy();
  }

  // Pushes one operation. Any thread.
  void push(operation* op) noexcept { push_chain(op, op); }

  // Pushes every operation of ops, keeping their order, with one exchange.
  void push(op_queue& ops) noexcept
  {
    operation* last = ops.back();
    operation* first = ops.release();
    if (first)
      push_chain(first, last);
  }

  // True if an operation may be queued. A push that has returned is always
  // seen (seq_cst: this load takes part in the sleep/wake handshake, see
  // scheduler.hpp).
  bool maybe_nonempty() const noexcept
  {
    return tail_.load(std::memory_order_seq_cst) != &stub_
      || head_.load(std::memory_order_relaxed) != &stub_;
  }

  // Cheap hint for the busy loop: relaxed, may lag behind a concurrent push.
  bool maybe_nonempty_relaxed() const noexcept
  {
    return tail_.load(std::memory_order_relaxed) != &stub_
      || head_.load(std::memory_order_relaxed) != &stub_;
  }

  bool try_lock_consumer() noexcept
  {
    return !consumer_.exchange(true, std::memory_order_acquire);
  }

  void unlock_consumer() noexcept
  {
    consumer_.store(false, std::memory_order_release);
  }

  // Pops one operation, or returns null if the queue is empty or a producer
  // is between its two steps. Only with the consumer lock held.
  operation* pop() noexcept
  {
    operation* head = head_.load(std::memory_order_relaxed);
    operation* next = load_next(head);
    if (head == &stub_)
    {
      if (next == nullptr)
        return nullptr;
      head_.store(next, std::memory_order_relaxed);
      head = next;
      next = load_next(next);
    }
    if (next)
    {
      head_.store(next, std::memory_order_relaxed);
      return head;
    }
    if (head != tail_.load(std::memory_order_acquire))
      return nullptr; // a producer has exchanged tail_ but not linked yet
    push_chain(&stub_, &stub_);
    next = load_next(head);
    if (next)
    {
      head_.store(next, std::memory_order_relaxed);
      return head;
    }
    return nullptr;
  }

  // Moves up to max operations into out. Only with the consumer lock held.
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
  struct stub_operation : operation
  {
    stub_operation() noexcept : operation(&never_called) {}
    static void never_called(scheduler*, operation*) noexcept {}
  };

  static operation* load_next(operation* op) noexcept
  {
    return std::atomic_ref<operation*>(op->next_).load(std::memory_order_acquire);
  }

  void push_chain(operation* first, operation* last) noexcept
  {
    std::atomic_ref<operation*>(last->next_).store(nullptr, std::memory_order_relaxed);
    operation* prev = tail_.exchange(last, std::memory_order_seq_cst);
    std::atomic_ref<operation*>(prev->next_).store(first, std::memory_order_release);
  }

  // Producers' end; on its own cache line so pushes do not disturb the consumer.
  alignas(64) std::atomic<operation*> tail_;
  // Consumer's end; written only with the consumer lock held (atomic so that
  // maybe_nonempty() may read it from any thread).
  alignas(64) std::atomic<operation*> head_;
  std::atomic<bool> consumer_{false};
  stub_operation stub_;
};

} // namespace detail
} // namespace zokio

// The queue the scheduler and the runners use: this one, or Boost.Lockfree's
// where a build defines ZOKIO_INJECT_QUEUE_LOCKFREE (for the harness's
// comparison only; lockfree_inject_queue.hpp).
#if defined(ZOKIO_INJECT_QUEUE_LOCKFREE)
#include <zokio/detail/sched/lockfree_inject_queue.hpp>
namespace zokio::detail { using inject_queue_type = lockfree_inject_queue; }
#else
namespace zokio::detail { using inject_queue_type = inject_queue; }
#endif

#endif // ZOKIO_DETAIL_SCHED_INJECT_QUEUE_HPP
