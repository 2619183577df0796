// zokio/detail/uring/accept_engine.hpp: multishot accept for an acceptor.
//
// Protocol. While multishot accept is enabled, every async_accept of an
// acceptor goes through its engine (socket_service::start_accept; a peer
// endpoint, when wanted, is asked of the new socket: accept_op.hpp). The
// engine is allocated on the first accept and freed with the socket state.
// It keeps one IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT (linux 5.19)
// armed while accepts are wanted, so the common accept loop costs one SQE
// for many connections instead of one per connection:
//   - async_accept takes a descriptor already accepted (ready_) if there is
//     one: its operation is posted to complete at once; otherwise the
//     operation is parked (waiters_) and the multishot request is armed if it
//     is not (on the calling thread's ring, or from a running thread).
//   - each CQE (reaped inline, multishot_operation.hpp) goes to the oldest
//     parked operation, which is pushed to the runner's ready queue; with none
//     parked it is queued in ready_. When kStopAt descriptors wait there, the
//     request is cancelled, so further connections stay in the kernel's
//     listen backlog (the bound); it is armed again when an accept finds
//     ready_ empty. CQEs already posted when the cancel lands still queue.
//   - an error CQE (EMFILE, ENFILE...) ends the request: the oldest parked
//     operation completes with it, as a single accept would, and the
//     connection stays in the backlog for a later accept.
//   - a refusal: the request's first CQE is EINVAL or EOPNOTSUPP, without
//     IORING_CQE_F_MORE, and the descriptor is a listening socket
//     (SO_ACCEPTCONN; the kernel would accept it, so the multishot flag is
//     what it refused: a kernel without it, a filter). The engine records it
//     for the process (refused()) and hands every parked operation back as
//     a single IORING_OP_ACCEPT (socket_op::start_step, through the run
//     loop, as an accept started off the context's threads); from then on
//     start() declines every accept that finds no queued descriptor, so
//     they are single accepts too, and the user never sees the refusal. On
//     a socket that is not listening, the same errors are the accept's own
//     (a single accept gets them too): the oldest parked operation
//     completes with it, as with EMFILE above.
//   - cancelling a parked operation (cancel(), close(), a cancellation slot)
//     unparks it and posts it with operation_aborted; nothing goes to the
//     kernel. close() also cancels the multishot request and closes the
//     descriptors in ready_; the acceptor's descriptor is closed only once
//     the engine's requests have completed (busy()).
//
// Threads: every field below is guarded by the socket state's lock_ (the
// process-wide refusal flags excepted: atomics, see refused_). The
// multishot request and its cancel live on one runner's ring (home: the one
// that armed it); their CQEs are handled on that runner's thread, and a
// cancel requested elsewhere is handed to it (runner::post_remote).
// Parked operations count as outstanding work (so run() does not return
// while an accept waits); the multishot request itself does not, so it can
// still be armed when its home thread leaves the context for good (a
// thread_pool worker whose run() returned, a thread that exits).
//
// Retirement: that thread then cancels the request and reaps its CQEs to
// the last one (runner::retire; the runner is retiring() meanwhile). The
// engine handles those CQEs as usual (a connection goes to the oldest parked
// accept, or to ready_, or is closed once the acceptor is closed), except
// that nothing is started on the retiring ring: no cancel at the queue
// bound (the request is being cancelled anyway), and an -ECANCELED that the
// engine did not ask for completes no parked accept (unlike the shutdown's
// cancel of every request): if accepts are parked, the request is posted to
// be armed again by whichever thread runs the context next (shot_posted;
// destroyed unrun if none does before shutdown).
#ifndef ZOKIO_DETAIL_URING_ACCEPT_ENGINE_HPP
#define ZOKIO_DETAIL_URING_ACCEPT_ENGINE_HPP

#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/uring/multishot_operation.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace zokio {
namespace detail {

class scheduler;
class socket_op;
class socket_state;

class accept_engine
{
public:
  explicit accept_engine(socket_state& st) noexcept;
  ~accept_engine();

  accept_engine(const accept_engine&) = delete;
  accept_engine& operator=(const accept_engine&) = delete;

  // Whether accepts use the engine: the kernel has multishot accept (probed;
  // off with ZOKIO_NET_FEATURES=none) and ZOKIO_MULTISHOT_ACCEPT is not "0"
  // (the opt-out: one IORING_OP_ACCEPT per accept). Read once per process.
  // (A refusal seen later is refused(): start() then declines.)
  static bool enabled() noexcept
  {
    static const bool on = [] {
      const char* v = std::getenv("ZOKIO_MULTISHOT_ACCEPT");
      return uring::features().multishot_accept && !(v && std::strcmp(v, "0") == 0);
    }();
    return on;
  }

  // Starts accept operation o (state_ and cancellation key set, not linked)
  // on the open socket st and returns true. Any thread. Returns false, o
  // untouched, once the kernel has refused multishot accept (refused()) and
  // the engine holds no accepted descriptor: the caller starts o as a single
  // accept. Throws std::bad_alloc only when the engine cannot be allocated
  // (o is then untouched).
  static bool start(scheduler& s, socket_state& st, socket_op* o);

  // Whether a multishot accept of this process has been refused by the
  // kernel (see the protocol above). Once true, stays true (but see
  // test_refuse). Any thread.
  static bool refused() noexcept { return refused_.load(std::memory_order_relaxed); }

  // Tests only: while on, the multishot request is prepared with an accept
  // flag no kernel defines, which the kernel rejects with EINVAL as one
  // without IORING_ACCEPT_MULTISHOT rejects the flag; so the refusal is
  // taken on real CQEs. Turning it off also forgets an earlier refusal.
  // Call with no accept in progress.
  static void test_refuse(bool on) noexcept;

  // Under st.lock_: removes o from the parked operations; true if it was there.
  bool unpark(socket_op* o) noexcept;

  // Under st.lock_ (close): closes the queued descriptors, stops arming, and
  // returns the request that cancels the armed multishot accept (to hand to
  // dispatch_stop after unlocking), or null.
  multishot_operation* request_stop() noexcept;

  // Submits a step returned by request_stop on the home ring. Not under the lock.
  static void dispatch_stop(scheduler& s, multishot_operation* step) noexcept;

  // Under st.lock_: a request of the engine may still name the descriptor.
  bool busy() const noexcept { return shot_ != shot_idle || stop_busy_; }

  // Service teardown, no thread running the context: parked operations are
  // destroyed, queued descriptors closed.
  void abandon() noexcept;

private:
  // Set (never cleared, but by test_refuse) by the engine that sees a
  // refusal; read by start() on every accept and by the refusal itself.
  // Relaxed: a hint, publishing no other data. A thread that reads it stale
  // (false) arms a request that the kernel refuses again, and that engine
  // falls back in turn; so any value read is correct, only slower.
  static std::atomic<bool> refused_;

  // test_refuse's switch; read by shot_op::do_prepare. Relaxed: set by a
  // test before it starts the accepts concerned.
  static std::atomic<bool> simulate_refusal_;

  // Descriptors queued before the request is cancelled (the bound).
  // Arbitrary: enough for a burst of connections between two accepts.
  static constexpr std::size_t stop_at = 64;

  enum shot_state : unsigned char { shot_idle, shot_posted, shot_armed };

  class shot_op final : public multishot_operation
  {
  public:
    explicit shot_op(accept_engine* e) noexcept
      : multishot_operation(&do_arm, &do_prepare, &do_cqe, true), engine_(e)
    {
    }
    accept_engine* const engine_;

  private:
    static void do_arm(scheduler* owner, operation* op);
    static void do_prepare(io_operation* op, ::io_uring_sqe* sqe);
    static void do_cqe(multishot_operation* op, runner& r, int res, unsigned flags,
        op_queue& out) noexcept;
  };

  class stop_op final : public multishot_operation
  {
  public:
    explicit stop_op(accept_engine* e) noexcept
      : multishot_operation(&do_start, &do_prepare, &do_cqe, false), engine_(e)
    {
    }
    accept_engine* const engine_;

  private:
    static void do_start(scheduler* owner, operation* op);
    static void do_prepare(io_operation* op, ::io_uring_sqe* sqe);
    static void do_cqe(multishot_operation* op, runner& r, int res, unsigned flags,
        op_queue& out) noexcept;
  };

  // Under the lock, after the request ended or its cancel completed: whether
  // to arm it again, and where: on r (the caller's runner; marked armed
  // there), or, when r is retiring, on another thread (marked posted). The
  // caller acts on the answer after unlocking (rearm).
  enum class rearm_at : unsigned char { none, here, elsewhere };
  rearm_at should_rearm(runner& r) noexcept;

  // Not under the lock: carries out should_rearm's answer.
  void rearm(runner& r, rearm_at where) noexcept;

  // Under the lock: the state can be reclaimed (closed, nothing in flight).
  bool drained() const noexcept;

  socket_state& state_;
  shot_op shot_op_;
  stop_op stop_op_;
  op_queue waiters_;                  // parked accept operations, oldest first
  std::vector<int> ready_;            // accepted descriptors, oldest at ready_head_
  std::size_t ready_head_ = 0;
  shot_state shot_ = shot_idle;       // the multishot request: none, posted to a runner, in a ring
  bool stop_busy_ = false;            // its cancel is queued or in flight
  bool cancel_sent_ = false;          // the armed request has been cancelled by us
  bool stopping_ = false;             // closed: never arm again
  bool shot_delivered_ = false;       // the armed request has posted a CQE with
                                      // IORING_CQE_F_MORE (the kernel took it)
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_ACCEPT_ENGINE_HPP
