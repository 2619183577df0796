// zokio/detail/uring/uring_operation.hpp: an operation carried out by the kernel.
#ifndef ZOKIO_DETAIL_URING_URING_OPERATION_HPP
#define ZOKIO_DETAIL_URING_URING_OPERATION_HPP

#include <zokio/detail/operation.hpp>

#include <liburing.h>

namespace zokio {
namespace detail {

class runner;

// An operation submitted as one SQE. Its address is the SQE's user_data, so
// the CQE leads straight back to it.
//
// Lifetime: from submission until its CQE is reaped, the kernel may write
// into it (or into buffers it names), so nothing frees it before then:
// cancelling only asks the kernel to finish early, and the memory is released
// when the (then -ECANCELED) completion arrives. The runner that submitted it
// is the only thread that touches it while it is in flight.
class uring_operation : public operation
{
public:
  // Fills sqe (opcode, fd, buffers). Called on the submitting runner's
  // thread, maybe later than start() if the submission queue was full.
  using prepare_func = void (*)(uring_operation* op, ::io_uring_sqe* sqe);

  // Result of the CQE: bytes transferred or -errno.
  int result_ = 0;

  // Flags of the CQE (IORING_CQE_F_MORE, IORING_CQE_F_BUFFER, ...).
  unsigned cqe_flags_ = 0;

  // The runner whose ring holds the operation (set by runner::start).
  runner* runner_ = nullptr;

  void prepare(::io_uring_sqe* sqe) { prepare_(this, sqe); }

protected:
  uring_operation(func_type complete, prepare_func prepare) noexcept
    : operation(complete), prepare_(prepare)
  {
  }

private:
  prepare_func prepare_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_URING_OPERATION_HPP
