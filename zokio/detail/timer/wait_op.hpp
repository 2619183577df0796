// zokio/detail/timer/wait_op.hpp: the operation behind one timer async_wait.
#ifndef ZOKIO_DETAIL_TIMER_WAIT_OP_HPP
#define ZOKIO_DETAIL_TIMER_WAIT_OP_HPP

#include <zokio/detail/operation.hpp>

#include <boost/system/error_code.hpp>

namespace zokio {
namespace detail {

// A pending wait. While pending it is owned by its timer queue and linked
// into its timer's list of waits (both under the queue's mutex); when it
// expires or is cancelled it moves, with ec_ set, to a run loop's queue.
class wait_op : public operation
{
public:
  // The outcome: success when it expired, operation_aborted when cancelled.
  boost::system::error_code ec_;

  // Identifies the wait for per-operation cancellation: the address of the
  // handler installed in the cancellation slot, or null.
  void* cancellation_key_ = nullptr;

protected:
  explicit wait_op(func_type func) noexcept : operation(func) {}

private:
  template <typename, typename> friend class timer_queue;

  // Links in the timer's FIFO of waits.
  wait_op* next_wait_ = nullptr;
  wait_op* prev_wait_ = nullptr;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_WAIT_OP_HPP
