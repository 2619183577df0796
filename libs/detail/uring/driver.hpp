// libs/detail/uring/driver.hpp: the io_uring driver: one ring per thread
// that runs a context, its submissions, its harvest and its sleep.
//
// Requests: an operation's io_request becomes one SQE (prepare), its address
// the SQE's user_data; its CQE's result and flags are written back into it
// (result_, and result_flags_ in the backend-neutral bits) and it is queued
// as completed. Operations with io_request::custom (the multishot requests:
// multishot_operation.hpp) prepare their own SQE.
//
// user_data tags: operations are 8-byte aligned, so the low bits of an
// operation's address are free. 1 alone is the wake-up read, 3 alone a
// completion nobody waits for (cancels issued by the driver itself); bit 0 on
// an address marks an internal step, bit 1 a multishot operation (its CQEs
// are handled inline by on_cqe, once per CQE).
//
// Threads: everything here belongs to the owner thread (the runner's), but
// wake(), which any thread calls. A ring can only be entered by its creator
// (IORING_SETUP_SINGLE_ISSUER, DEFER_TASKRUN).
#ifndef ZOKIO_LIBS_DETAIL_URING_DRIVER_HPP
#define ZOKIO_LIBS_DETAIL_URING_DRIVER_HPP

#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/sched/runner.hpp>

#include "detail/uring/ring.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace zokio {
namespace detail {

class multishot_operation;
class receive_loop_base;

namespace uring {

class driver
{
public:
  static constexpr std::uint64_t wake_tag = 1;     // the eventfd read
  static constexpr std::uint64_t ignore_tag = 3;   // completions nobody waits for
  static constexpr std::uint64_t evacuate_tag = 5; // evacuate()'s cancel
  static constexpr std::uint64_t internal_bit = 1; // or-ed into an internal step's address

  // Creates the wake-up eventfd and the ring. Throws system_error.
  driver(runner& r, const driver_sizes& sizes);
  ~driver();

  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  // A receive loop's multishot receive (receive_loop.hpp): one
  // IORING_OP_RECV with IORING_RECV_MULTISHOT, its buffers chosen from
  // group, its CQEs handed to receive_loop_base::on_ring_cqe in the harvest.
  // False if no SQE is free even after a flush (the loop tries again).
  bool arm_receive_loop(receive_loop_base* l, int fd, std::uint16_t group, int flags) noexcept;

  // Asks the kernel to end l's multishot receive (its last CQE follows).
  void cancel_receive_loop(receive_loop_base* l) noexcept;

  // See runner::start / start_internal / cancel_internal.
  void start(io_operation* op);
  void start_internal(io_operation* op);
  void cancel_internal(io_operation* op) noexcept;

  // Requests prepared and not handed to the kernel yet.
  unsigned pending() const noexcept { return ring_->sq_pending(); }

  // Prepares operations that waited for a free SQE.
  void flush() noexcept
  {
    if (!backlog_.empty() || !internal_backlog_.empty())
      flush_backlog();
  }

  // Hands the prepared requests to the kernel (one io_uring_enter). False if
  // the kernel pushed back (they go with the next enter).
  bool submit();

  // Completions visible without entering the kernel.
  bool completions_ready() const noexcept { return ring_->cq_ready() != 0; }

  // Completions wait in the kernel (deferred task work, an overflowed CQ):
  // an enter makes them visible.
  bool wants_events(bool /*idle*/) const noexcept { return ring_->needs_getevents(); }
  void get_events();

  // Moves completed operations to out (internal steps to the runner's
  // internal_ready_; multishot CQEs are handled inline).
  std::size_t reap(op_queue& out);

  // Before a sleep: arms the eventfd read if it is not in the ring. True if
  // a wake-up can end the sleep (otherwise the caller sleeps at most 1 ms).
  bool prepare_sleep();

  // Submits what is prepared and waits for a completion, a wake-up or the
  // timeout (scheduler::no_deadline: none).
  void sleep(std::int64_t timeout_ns);

  // Any thread: ends the owner's sleep.
  void wake() noexcept;

  // Requests in the kernel, not counting the wake-up read.
  std::size_t in_flight() const noexcept { return in_flight_; }

  // The owner leaves the context for good (scheduler::retire_this_thread):
  // cancels each lasting multishot request and reaps, entering the kernel
  // with a 10 ms timeout, until none is left or for at most
  // retire_limit_ns. Every CQE reaped meanwhile is handled as in a run
  // loop. Operations still in the backlog stay there. True if no multishot
  // request is left.
  bool retire(op_queue& out) noexcept;

  // The owner leaves for good, after retire(): asks the kernel to cancel
  // every request still in the ring (cancel_all) and
  // reaps, entering with a 10 ms timeout, until none is left or for at most
  // a second. Operations reaped go to out (each with its result: -ECANCELED
  // for the cancelled ones, the kernel's for those it had made), and so do
  // those in the backlog (never submitted; result -ECANCELED); internal
  // steps to the runner's internal_ready_ as in a run loop. Linux does not
  // cancel a pending receive when its thread exits, and no other thread can
  // enter a single-issuer ring, so without this they would never complete.
  // Returns the requests left in the ring (none unless the kernel kept
  // some past the second).
  std::size_t evacuate(op_queue& out) noexcept;

  // Shutdown, on the owner thread: asks the kernel to cancel everything in
  // flight and waits a bounded time for the completions, destroying each
  // operation as it comes back.
  void shutdown_on_owner() noexcept;

  // Shutdown or take-over after the owner thread exited: the kernel has
  // cancelled its requests and posted their completions, which can be read
  // without entering. Completed operations go to out.
  void reap_orphaned(op_queue& out) noexcept { if (ring_) reap(out); }

  // The owner thread exited and another takes the runner over: a new ring,
  // which belongs to the calling thread. Only with nothing in flight.
  void renew();

  // A child after fork() (drv::forked): the ring and the eventfd were the
  // parent's, and so is everything in the ring. They are let go without a
  // request (unmapped and closed, which leaves the parent's ring as it is;
  // the child never enters it) and replaced by new ones, which belong to
  // the calling thread. What the old ring held: a lasting multishot
  // request gets its last CQE (-ECANCELED) as on a retiring ring (an
  // accept engine posts its request to be armed again), the internal steps
  // of steps complete with -ECANCELED, and each socket operation linked
  // to this runner goes through socket_op::forked. The backlog stays.
  void forked(io_operation* const* steps, std::size_t n, op_queue& out);

  // The scheduler is destroyed with requests still in flight: the ring is
  // closed (the kernel cancels them) and the eventfd too; the runner and
  // the operations are never freed (the kernel may still write into them).
  void abandon() noexcept;

  // Operations (and internal steps) that waited for an SQE, dropped unrun
  // at shutdown (backlog_ destroyed; internal steps belong to their service).
  void drop_backlog() noexcept
  {
    backlog_.clear();
    internal_backlog_.release();
  }

  // Operations that waited for an SQE, handed to another thread (take-over).
  op_queue& backlog() noexcept { return backlog_; }

  ::io_uring* get() noexcept { return ring_->get(); }
  uring::ring& ring() noexcept { return *ring_; }

  // Longest retire(): the cancels complete at once unless the kernel is
  // short of memory. Same bound as the Asio bridge's retirement.
  static constexpr std::int64_t retire_limit_ns = 1'000'000'000;

private:
  // Asks the kernel to cancel every request in the ring but the wake-up
  // read: with IORING_ASYNC_CANCEL_ANY (5.19) one request, whose CQE carries
  // tag; without it (uring::features().cancel_any), one request per
  // operation, CQEs ignored. False if some cancel found no SQE (to be asked
  // again). Owner thread.
  bool cancel_all(std::uint64_t tag) noexcept;

  void create_ring();
  void prepare_sqe(io_operation* op, ::io_uring_sqe* sqe);
  void flush_backlog();
  ::io_uring_sqe* get_sqe();          // flushes a full queue once; null if still full

  // A transfer with poll_then_retry or no_sigpipe completed with res: false
  // if it was submitted again (a poll after EAGAIN, the transfer after the
  // poll), true if res is its outcome (a SIGPIPE it raised is taken).
  bool transfer_outcome(io_operation* op, int res);

  runner& runner_;
  const driver_sizes sizes_;
  std::unique_ptr<uring::ring> ring_;
  op_queue backlog_;                  // operations waiting for a free SQE
  op_queue internal_backlog_;         // internal steps waiting for a free SQE
  std::size_t in_flight_ = 0;         // SQEs given to the kernel, CQE not reaped
  std::size_t multishot_in_flight_ = 0; // of which multishot operations (lasting or not)
  multishot_operation* armed_ = nullptr; // lasting multishot requests in the ring
  bool wake_armed_ = false;           // the eventfd read is in the ring
  int evacuate_result_ = 0;           // evacuate()'s cancel: 1 while in flight, then its result
  std::uint64_t wake_buffer_ = 0;     // target of the eventfd read
  int wake_fd_ = -1;                  // eventfd another thread writes to wake this one
};

} // namespace uring
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_URING_DRIVER_HPP
