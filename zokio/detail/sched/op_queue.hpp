// zokio/detail/sched/op_queue.hpp: an intrusive FIFO of operations for one thread.
#ifndef ZOKIO_DETAIL_SCHED_OP_QUEUE_HPP
#define ZOKIO_DETAIL_SCHED_OP_QUEUE_HPP

#include <zokio/detail/operation.hpp>

#include <cstddef>

namespace zokio {
namespace detail {

// Not thread-safe: one thread owns a queue at a time. The queue owns the
// operations it holds; those still queued when it is destroyed are destroyed
// without invoking their handlers.
class op_queue
{
public:
  op_queue() noexcept = default;
  op_queue(const op_queue&) = delete;
  op_queue& operator=(const op_queue&) = delete;

  op_queue(op_queue&& other) noexcept : front_(other.front_), back_(other.back_)
  {
    other.front_ = other.back_ = nullptr;
  }

  ~op_queue() { clear(); }

  bool empty() const noexcept { return front_ == nullptr; }
  operation* front() const noexcept { return front_; }
  operation* back() const noexcept { return back_; }

  void push(operation* op) noexcept
  {
    op->next_ = nullptr;
    if (back_)
      back_->next_ = op;
    else
      front_ = op;
    back_ = op;
  }

  // Moves every operation of other to the back of this queue.
  void push(op_queue& other) noexcept
  {
    if (other.front_ == nullptr)
      return;
    if (back_)
      back_->next_ = other.front_;
    else
      front_ = other.front_;
    back_ = other.back_;
    other.front_ = other.back_ = nullptr;
  }

  // Puts op in front of every queued operation.
  void push_front(operation* op) noexcept
  {
    op->next_ = front_;
    front_ = op;
    if (back_ == nullptr)
      back_ = op;
  }

  // Removes and returns the front operation, or null.
  operation* pop() noexcept
  {
    operation* op = front_;
    if (op)
    {
      front_ = op->next_;
      if (front_ == nullptr)
        back_ = nullptr;
      op->next_ = nullptr;
    }
    return op;
  }

  // Takes the whole chain out, leaving the queue empty. The chain is linked
  // through next_ and ends with a null link.
  operation* release() noexcept
  {
    operation* first = front_;
    front_ = back_ = nullptr;
    return first;
  }

  static operation* next(operation* op) noexcept { return op->next_; }

  // Destroys every queued operation without invoking it.
  void clear() noexcept
  {
    while (operation* op = pop())
      op->destroy();
  }

private:
  operation* front_ = nullptr;
  operation* back_ = nullptr;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHED_OP_QUEUE_HPP
