// zokio/detail/socket/socket_op.hpp: the base of every kernel operation on a
// socket: its place in the socket's list, its start, and its cancellation.
//
// Life of a socket operation:
//   1. The initiating function allocates it (handler's allocator), links it
//      into its socket_state's list and starts it: on the calling thread's
//      driver if that thread runs the context, otherwise it is handed to a
//      thread that does (start_step), which starts it on its own driver.
//   2. Its completion is reaped by that runner (the op's home_); its completion
//      function unlinks it (the last unlink of a closed socket closes the
//      descriptor), frees the memory and invokes the handler.
//
// Cancellation (socket cancel(), close(), destruction, or a cancellation
// slot) must be carried out by the driver that holds the operation (an
// IORING_OP_ASYNC_CANCEL on its ring; on a readiness driver, taking the
// operation out of its descriptor's wait queue). Each operation embeds a
// cancel step (an io_request::cancel) for that, so cancelling never
// allocates. Under the socket's lock, the canceller marks the operation
// (cancel_pending_) and then, on the home runner's thread, starts the step at
// once; from any other thread it hands the step to the home runner
// (runner::post_remote). The step sets cancelled_ (an operation the driver
// has not acted on yet, one still waiting for a free SQE, then completes
// with operation_aborted without its request) and starts the cancel request
// after the operation, so the driver always sees the operation first.
//
// The operation's memory must outlive its cancel request (the request names
// it by address: were the memory reused by another operation on the same
// driver, the request could hit that one). So an operation whose CQE arrives
// while its step is pending does not complete: it sets deferred_ and the
// step, when its own CQE has been reaped, runs the completion. An operation
// not yet on a driver (home_ null) is only marked (abort_): its start step then
// completes it with operation_aborted instead of submitting it.
#ifndef ZOKIO_DETAIL_SOCKET_SOCKET_OP_HPP
#define ZOKIO_DETAIL_SOCKET_SOCKET_OP_HPP

#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/socket/socket_state.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cerrno>

namespace zokio {
namespace detail {

class socket_op : public io_operation
{
public:
  // The socket, or null for an operation that completes without the kernel
  // (zero-length transfer, socket not open).
  socket_state* state_;

  // Identifies the operation for per-operation cancellation: the address of
  // the handler installed in its cancellation slot, or null.
  void* cancellation_key_ = nullptr;

  // Chooses the runner whose driver must hold the operation, given the runner
  // of the calling thread (null off the context's threads). Null hook: the
  // calling thread's runner (the default). An operation that needs a
  // particular ring (a receive into that ring's provided buffers) returns
  // that ring's runner, or null while none is chosen yet; it is then handed
  // over (runner::post_remote) and submitted there.
  using route_func = runner* (*)(socket_op* op, runner* here);
  route_func route_ = nullptr;

  // Names st as the operation's socket (its descriptor in the request).
  void attach(socket_state* st) noexcept
  {
    state_ = st;
    req_.fd = st->fd_;
    req_.generation = st->generation_;
  }

  // Links the operation into its socket and starts it (see the life above).
  // The operation counts as outstanding work from here on.
  void start(scheduler& s);

  // Completes the operation with result (a byte count or -errno) without
  // involving the kernel, through the run loop: never inside the caller.
  void complete_now(scheduler& s, int result);

  // Under the socket's lock: marks the operation for cancellation. Returns
  // the step to dispatch (after unlocking) or null when there is nothing to
  // submit (already being cancelled, or not yet on a ring).
  io_operation* request_cancel() noexcept;

  // Starts or hands over a step returned by request_cancel. Not under the lock.
  static void dispatch_cancel(scheduler& s, io_operation* step) noexcept;

  // The thread whose driver held o is leaving for good (its ring emptied by
  // scheduler::retire_this_thread; o came back from the kernel, or from the
  // driver's backlog, with -ECANCELED). On the leaving thread. Under the
  // socket's lock o leaves that runner (home_ null: a cancel from now on
  // only marks it, abort_, as before it first reached a driver). True if o
  // is to be made again by whichever thread runs the context next (its
  // function is start_step): it was not cancelled by its user and needs no
  // particular ring. False: o completes with what it has (its function is
  // its completion).
  static bool migrate(socket_op* o) noexcept;

  // A child after fork(): the ring of o's home runner was the parent's and
  // is gone (uring::driver::forked); o is linked to a socket
  // with that home. Single-threaded (the child has one thread). What the
  // ring held is lost: an operation that was in it is made again in the
  // child when it can be (as migrate: not being cancelled, needs no
  // particular ring) and otherwise completes with operation_aborted; a
  // cancel step that was in it is finished here. Operations to run go to
  // out; nothing happens to one that had come back from the kernel.
  static void forked(socket_op* o, op_queue& out) noexcept;

protected:
  // kind: the request the operation makes; the rest of req_ is filled by
  // the concrete operation (buffers, flags) and by its start (descriptor).
  socket_op(func_type complete, io_request::kind_type kind) noexcept
    : io_operation(complete), state_(nullptr), complete_(complete), cancel_(this)
  {
    req_.kind = kind;
    // Until a driver (or complete_now) reports the request's result: an
    // operation destroyed before it was made (its context shut down first)
    // must not look like an accept or open that returned descriptor 0.
    result_ = -ECANCELED;
    // A connect interrupted by its cancellation is not made again: the
    // socket's connection attempt itself was aborted.
    migratable_ = kind != io_request::connect;
  }

  // For stream receives: the request gets io_request::poll_first when the
  // last receive on the socket left it empty (see socket_state).
  void use_drain_hint() noexcept { drain_hint_ = true; }

  // First thing a completion function does: false means "not now" (a
  // cancel step is still in flight and will run the completion later).
  // Otherwise the operation is unlinked from its socket. owner is null when
  // the operation is being destroyed.
  bool finish() noexcept;

  // The result as the operation reports it: a request never made or one
  // interrupted by its cancellation count as cancelled.
  int result() const noexcept
  {
    if (nop_ || (cancelled_ && result_ == -EINTR))
      return -ECANCELED;
    return result_;
  }

  // True for an accept whose descriptor came from the acceptor's multishot
  // engine (no peer address from the kernel: ask getpeername).
  bool via_engine() const noexcept { return via_engine_; }

  // True when the request was never made (cancelled before the driver acted).
  bool prepared_as_nop() const noexcept { return nop_; }

  // The error for a negative result.
  static boost::system::error_code error_for(int res) noexcept
  {
    boost::system::error_code ec;
    if (res == already_open_result)
      ec = boost::asio::error::already_open;
    else if (res < 0)
      ec.assign(-res, boost::asio::error::get_system_category());
    return ec;
  }

public:
  // A result no kernel returns: completes with boost::asio::error::already_open.
  static constexpr int already_open_result = -(1 << 20);

protected:

private:
  friend class socket_service;
  friend class accept_engine;

  // The step that asks the driver to cancel its operation.
  class cancel_step final : public io_operation
  {
  public:
    explicit cancel_step(socket_op* target) noexcept
      : io_operation(&do_start), target_(target)
    {
      req_.kind = io_request::cancel;
      req_.data = static_cast<io_operation*>(target);
    }

    void set_start() noexcept { set_func(&do_start); }
    void set_done() noexcept { set_func(&do_done); }

    socket_op* const target_;

  private:
    static void do_start(scheduler* owner, operation* op);
    static void do_done(scheduler* owner, operation* op);
  };

  static void start_step(scheduler* owner, operation* op);
  void submit_on(runner& r);

  func_type complete_;       // the completion (func_ is start_step meanwhile)
  cancel_step cancel_;

  // Under the socket's lock.
  socket_op* link_prev_ = nullptr;
  socket_op* link_next_ = nullptr;
  runner* home_ = nullptr;      // whose driver holds it; null until it reaches one
  bool abort_ = false;          // cancelled before it reached a driver
  bool cancel_pending_ = false; // cancel_ is queued or in flight
  bool deferred_ = false;       // completed while cancel_ was pending
  bool parked_ = false;         // an accept waiting in its accept_engine (no SQE)
  bool unparked_ = false;       // taken out of the engine by a cancel: post it
  bool via_engine_ = false;     // an accept served by the multishot engine
  bool drain_hint_ = false;     // see use_drain_hint
};

// Installed in a handler's cancellation slot: cancels the socket's operation
// that carries this object's address as its key. Terminal, partial and total
// cancellation all cancel (a socket operation that has not completed has
// transferred nothing, so there is nothing to undo).
class socket_op_cancellation
{
public:
  explicit socket_op_cancellation(socket_state* state) noexcept : state_(state) {}

  void operator()(boost::asio::cancellation_type_t type);

private:
  socket_state* state_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_SOCKET_OP_HPP
