// zokio/detail/operation.hpp: the base of everything a zokio scheduler queues.
#ifndef ZOKIO_DETAIL_OPERATION_HPP
#define ZOKIO_DETAIL_OPERATION_HPP

#include <zokio/detail/config.hpp>

namespace zokio {
namespace detail {

class scheduler;

// An operation is a posted handler, a timer wait or a kernel I/O request.
//
// It is intrusive (next_ links it into one queue at a time) and type-erased by
// one function pointer instead of a virtual call, so the run loop dispatches
// with one indirect jump (the same design as Asio's scheduler_operation).
//
// Ownership: exactly one party owns an operation at any time: the initiating
// function until it is queued, then the queue (or the kernel, or a timer
// queue) that holds it, then the run loop that pops it. Whoever owns it last
// calls complete(), which frees the operation's memory *before* it invokes the
// user's handler, so the handler can start the next operation with the same
// recycled block; or destroy(), which frees it without invoking anything
// (shutdown).
class operation
{
public:
  // Invokes the handler (or performs the operation's next step) on the
  // scheduler's thread. May throw whatever the handler throws.
  void complete(scheduler& owner) { func_(&owner, this); }

  // Frees the operation without invoking its handler.
  void destroy() noexcept { func_(nullptr, this); }

protected:
  // owner is the scheduler running the completion, or null to destroy.
  using func_type = void (*)(scheduler* owner, operation* op);

  explicit operation(func_type func) noexcept : func_(func) {}

  // Never deleted through a base pointer: func_ knows the concrete type.
  ~operation() = default;

  // Lets an operation change what its next completion does (for example, an
  // operation initiated away from its run loop first runs a "start" step).
  void set_func(func_type func) noexcept { func_ = func; }

private:
  friend class op_queue;
  friend class inject_queue;
  friend class receive_loop_base;  // next_ links a loop waiting for a buffer (receive_loop.hpp)

  operation* next_ = nullptr;
  func_type func_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_OPERATION_HPP
