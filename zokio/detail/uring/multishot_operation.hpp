// zokio/detail/uring/multishot_operation.hpp: a kernel request whose CQEs
// are handled inside the harvest, one call per CQE.
#ifndef ZOKIO_DETAIL_URING_MULTISHOT_OPERATION_HPP
#define ZOKIO_DETAIL_URING_MULTISHOT_OPERATION_HPP

#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/runner.hpp>

#include <cstdint>

namespace zokio {
namespace detail {

// A multishot request (IORING_ACCEPT_MULTISHOT: linux 5.19) posts one CQE
// per result while IORING_CQE_F_MORE is set, and a last one without it. An
// operation cannot wait in a ready queue once per CQE (it has one link), so
// the io_uring driver does not queue it: its user_data carries tag, and the
// driver's reap calls on_cqe for every such CQE, on the owner thread, before
// it moves on. on_cqe may push operations it made ready to out, and may start
// requests on the runner (re-arming itself after its last CQE). io_uring
// only: nothing starts one on another backend.
//
// Ownership: the object belongs to whoever armed it and must stay alive
// until the CQE without IORING_CQE_F_MORE has been handled. It is not
// counted as outstanding work (the operations it completes are).
//
// Lasting requests (a multishot accept: lasting is true) end only when
// cancelled or on an error, so nothing makes the thread that runs the ring
// wait for them and run() may return with them armed. The runner keeps them
// in a list (armed_prev_/armed_next_, owner thread only) from the
// preparation of their SQE to their last CQE, so that a thread leaving the
// context for good can cancel them and reap them to the end (the driver's
// retire): a ring is entered only by its own thread, and a runner
// with a request still in its ring is never freed. A one-shot request that
// is tagged only to be handled inline (the cancel of a multishot request)
// is not lasting: it ends by itself. While the runner is retiring(), on_cqe
// must start no request on it (it may post work to the scheduler instead).
class multishot_operation : public io_operation
{
public:
  using cqe_func = void (*)(multishot_operation* op, runner& r, int res, unsigned flags,
      op_queue& out) noexcept;

  // Set in user_data (operations are 8-byte aligned; the driver's own tags
  // 1 and 3 are checked first).
  static constexpr std::uint64_t tag = 2;

  void on_cqe(runner& r, int res, unsigned flags, op_queue& out) noexcept
  {
    on_cqe_(this, r, res, flags, out);
  }

  // For prepare functions: marks the SQE as this operation's
  // (libs/detail/uring/driver.cpp).
  static void tag_sqe(::io_uring_sqe* sqe, multishot_operation* op) noexcept;

  // The user_data of op's SQEs (for IORING_OP_ASYNC_CANCEL).
  static std::uint64_t user_data(multishot_operation* op) noexcept
  {
    return reinterpret_cast<std::uint64_t>(op) | tag;
  }

protected:
  multishot_operation(func_type func, prepare_func prepare, cqe_func on_cqe,
      bool lasting) noexcept
    : io_operation(func, prepare), on_cqe_(on_cqe), lasting_(lasting)
  {
  }

private:
  friend class uring::driver;

  cqe_func on_cqe_;
  const bool lasting_;

  // The runner's list of lasting requests in its ring; touched only by the
  // thread that owns that ring.
  multishot_operation* armed_prev_ = nullptr;
  multishot_operation* armed_next_ = nullptr;
  bool retire_cancelled_ = false;  // the driver's retire has asked the kernel to cancel it
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_MULTISHOT_OPERATION_HPP
