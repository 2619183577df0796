// zokio/detail/socket/ops/waitid_op.hpp: waiting for a child's exit with
// IORING_OP_WAITID (linux 6.7; io_uring only, when net_features::waitid).
//
// The request is waitid(P_PID, pid, info, WEXITED): it completes when the
// child exits and reaps it, writing its siginfo into info (which must
// outlive the operation: it lives in the child's shared state). It is linked
// to the child's pidfd state, so cancel() and per-operation cancellation
// reach it as any socket operation (IORING_OP_ASYNC_CANCEL).
#ifndef ZOKIO_DETAIL_SOCKET_OPS_WAITID_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_WAITID_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include <signal.h>

namespace zokio {
namespace detail {

// Fills sqe with waitid(P_PID, pid, info, WEXITED), keeping its user_data
// (libs/detail/uring/driver.cpp: the SQE layout stays out of public headers).
void prepare_waitid_sqe(::io_uring_sqe* sqe, int pid, ::siginfo_t* info) noexcept;

template <typename Handler, typename IoExecutor>
class waitid_op final : public socket_op
{
public:
  waitid_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, int pid,
      ::siginfo_t* info)
    : socket_op(&do_complete, io_request::custom), handler_(std::move(handler), io_ex, owner),
      pid_(pid), info_(info)
  {
    prepare_ = &prepare;
  }

private:
  template <typename, typename> friend class bound_handler;

  static void prepare(io_operation* base, ::io_uring_sqe* sqe)
  {
    auto* o = static_cast<waitid_op*>(base);
    prepare_waitid_sqe(sqe, o->pid_, o->info_);
  }

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<waitid_op*>(base);
    if (!o->finish())
      return;
    int r = o->result();
    bound_handler<Handler, IoExecutor>::upcall(owner, o, error_for(r < 0 ? r : 0));
  }

  bound_handler<Handler, IoExecutor> handler_;
  int pid_;
  ::siginfo_t* info_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_WAITID_OP_HPP
