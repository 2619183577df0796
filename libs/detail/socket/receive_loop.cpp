// libs/detail/socket/receive_loop.cpp: the steps of a receive loop (the
// protocol is at the top of zokio/detail/socket/receive_loop.hpp).
#include <zokio/detail/socket/receive_loop.hpp>
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/detail/sched/runner.hpp>
#include <zokio/backend.hpp>

#if defined(ZOKIO_HAS_IO_URING)
#include <zokio/detail/uring/net_features.hpp>
#include "detail/uring/driver.hpp"
#include <liburing.h>
#endif

#include <boost/asio/cancellation_signal.hpp>

#include <cerrno>

namespace zokio {
namespace detail {

namespace {

// final_ for an orderly end of stream (no errno means it).
constexpr int end_of_stream = -1;

// A pool id as a loop's list of pending chunks keeps it: pools hold at most
// 32768 buffers, and the pool's nil (all ones) becomes the list's
// (receive_loop_base::nil_pending).
std::uint16_t pending_id(std::uint32_t id) noexcept
{
  return static_cast<std::uint16_t>(id);
}

boost::system::error_code code_for(int final) noexcept
{
  if (final == end_of_stream)
    return boost::asio::error::eof;
  return boost::system::error_code(final, boost::asio::error::get_system_category());
}

} // namespace

receive_loop_base::~receive_loop_base()
{
  if (step_)
  {
    if (step_live_)
      step_->~step_op();
    ::operator delete(static_cast<void*>(step_));
  }
}

scheduler& receive_loop_base::owner() noexcept
{
  return state_->service_->owner();
}

void receive_loop_base::work_done(scheduler& s) noexcept
{
  s.work_finished();
}

bool receive_loop_base::multishot_possible() noexcept
{
#if defined(ZOKIO_HAS_IO_URING)
  if (owner().backend() != zokio::backend::io_uring)
    return false;
  const uring::net_features& f = uring::features();
  return f.multishot_recv && f.buffer_ring;
#else
  return false;
#endif
}

void receive_loop_base::queue(scheduler& s, runner* to) noexcept
{
  s.work_started();
  if (to)
    to->post_remote(this);
  else
    s.post_deferred(this);
}

void receive_loop_base::begin() noexcept
{
  scheduler& s = owner();
  // The loop's own unit: run() does not return while a loop waits for data,
  // as it does not while a read is pending. Given back after the last call.
  s.work_started();
  socket_state* st = state_;
  int err = EBADF;  // closed meanwhile (by another thread)
  st->lock_.lock();
  if (st->recv_loop_ != nullptr)
  {
    err = EALREADY;  // one loop per socket: boost::asio::error::already_started
  }
  else if (st->open_)
  {
    st->recv_loop_ = this;
    queued_ = true;  // until the mode is chosen
    err = 0;
  }
  st->lock_.unlock();
  if (err != 0)
    return end_later(s, err);
  if (runner* here = s.this_thread_runner())
    start_here(s, *here);
  else
    queue(s, nullptr);  // a thread that runs the context starts it (do_run)
}

void receive_loop_base::start_here(scheduler& s, runner& here) noexcept
{
  // (queued_ is set: no other thread looks at the loop's mode meanwhile but
  // mark_stop, under the lock.)
  socket_state* st = state_;
  mode_type mode = mode_type::chain;
  runner* home = nullptr;
  if (multishot_possible())
  {
    // The pool binds to this thread's ring if it is not bound yet.
    home = pool_.route(&here);
    if (home != &here)
    {
      if (!home->evacuated())
        return queue(s, home);  // decided there
      // Bound to a ring whose thread has left: it cannot be used.
      st->lock_.lock();
      final_ = ECANCELED;
      st->lock_.unlock();
      return queue(s, nullptr);
    }
    if (pool_.kernel_selected())
      mode = mode_type::multishot;
  }
  if (mode == mode_type::chain && step_ == nullptr)
  {
    // The receive's storage, once for the loop.
    try
    {
      step_ = static_cast<step_op*>(::operator new(sizeof(step_op)));
    }
    catch (const std::bad_alloc&)
    {
      st->lock_.lock();
      final_ = ENOMEM;
      st->lock_.unlock();
      return queue(s, nullptr);
    }
  }
  st->lock_.lock();
  mode_ = mode;
  const bool stop = stop_;
  if (stop)
  {
    final_ = ECANCELED;
  }
  else
  {
    queued_ = false;
    if (mode == mode_type::multishot)
    {
      armed_ = true;
      cancel_sent_ = false;
    }
  }
  st->lock_.unlock();
  if (stop)
    return queue(s, nullptr);  // ends through the run loop
  if (mode == mode_type::multishot)
    arm_ring(*home);
  else
    arm_chain(st);
}

void receive_loop_base::do_run(scheduler* owner, operation* base)
{
  auto* l = static_cast<receive_loop_base*>(base);
  if (owner == nullptr)
  {
    // Shutdown. A request still in the ring names the loop: its last CQE
    // (reaped by the shutdown, or never if the ring is abandoned) frees it.
    socket_state* st = l->state_;
    st->lock_.lock();
    const bool armed = l->armed_;
    l->queued_ = false;
    st->lock_.unlock();
    if (armed)
      return;
    return l->end(nullptr, boost::asio::error::operation_aborted);
  }
  if (l->mode_ == mode_type::undecided && l->final_ == 0)
    return l->start_here(*owner, *owner->this_thread_runner());
  l->step(*owner);
}

void receive_loop_base::step(scheduler& s)
{
  socket_state* st = state_;
  st->lock_.lock();
  if (parked_)
  {
    // Queued while waiting for a buffer: only a cancel does that (a
    // buffer's return clears parked_ first). Off the pool's list, then end.
    st->lock_.unlock();
    pool_.unpark(this);
    st->lock_.lock();
    parked_ = false;
    if (final_ == 0)
      final_ = ECANCELED;
  }
  if (pend_head_ != nil_pending)
  {
    const std::uint32_t id = pend_head_;
    pend_head_ = pending_id(pool_.pending_next(id));
    if (pend_head_ == nil_pending)
      pend_tail_ = nil_pending;
    const std::uint32_t length = pool_.pending_length(id);
    st->lock_.unlock();
    provided_buffer b = pool_.make_buffer(id, length);
    // queued_ stays set: the handler's return continues the loop (after_chunk).
    return deliver_(this, &s, boost::system::error_code(), &b);
  }
  if (final_ != 0 && !armed_)
  {
    const int err = final_;
    st->lock_.unlock();
    return end(&s, code_for(err));
  }
  if (mode_ != mode_type::multishot)
  {
    // Chain: resumed after waiting for a buffer (a cancel meanwhile ends).
    const bool stop = stop_;
    if (stop)
      final_ = ECANCELED;
    else
      queued_ = false;
    st->lock_.unlock();
    if (stop)
      return end(&s, boost::asio::error::operation_aborted);
    return arm_chain(st);
  }
  // Multishot: (re)arm the request, or have the kernel cancel it.
  const bool to_cancel = stop_ && armed_ && !cancel_sent_;
  const bool to_arm = !armed_ && !parked_ && final_ == 0;
  if (!to_cancel && !to_arm)
  {
    queued_ = false;
    st->lock_.unlock();
    return;
  }
  runner* here = s.this_thread_runner();
  runner* home = this->home();
  if (here != home)
  {
    if (home->evacuated())
    {
      // The home thread left and its ring with it (the request, if it was
      // there, was cancelled and reaped then): the loop can only end.
      final_ = ECANCELED;
      const int err = final_;
      st->lock_.unlock();
      return end(&s, code_for(err));
    }
    st->lock_.unlock();
    return queue(s, home);  // the ring is the home thread's
  }
  if (to_arm)
  {
    if (stop_)
    {
      final_ = ECANCELED;
      st->lock_.unlock();
      return end(&s, boost::asio::error::operation_aborted);
    }
    armed_ = true;
    cancel_sent_ = false;
    queued_ = false;
    st->lock_.unlock();
    return arm_ring(*home);
  }
  cancel_sent_ = true;
  queued_ = false;
  st->lock_.unlock();
#if defined(ZOKIO_HAS_IO_URING)
  home->uring_driver().cancel_receive_loop(this);
#endif
}

void receive_loop_base::arm_ring(runner& home) noexcept
{
#if defined(ZOKIO_HAS_IO_URING)
  // Buffers released on other threads go back in the kernel's ring first.
  pool_.prepare_kernel_mode();
  epoch_ = pool_.returns();
  if (home.uring_driver().arm_receive_loop(this, state_->fd_, pool_.group(), flags_))
    return;
  // No SQE free even after a flush: try again from the run loop (unless a
  // cancel queued the loop meanwhile: that run sees it unarmed).
  socket_state* st = state_;
  st->lock_.lock();
  armed_ = false;
  const bool run = !queued_;
  queued_ = true;
  st->lock_.unlock();
  if (run)
    queue(owner(), &home);
#else
  (void)home;
#endif
}

void receive_loop_base::on_ring_cqe(receive_loop_base* l, runner& r, int res, unsigned flags,
    op_queue& out) noexcept
{
#if defined(ZOKIO_HAS_IO_URING)
  socket_state* st = l->state_;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
  const std::uint32_t id = flags >> IORING_CQE_BUFFER_SHIFT;
  scheduler& s = r.owner();

  if (s.shutting_down())
  {
    // The context is going (its pool may be gone: not touched). The last
    // CQE frees the loop if nothing else will (do_run at shutdown).
    st->lock_.lock();
    if (!more)
      l->armed_ = false;
    const bool free_now = !more && !l->queued_;
    st->lock_.unlock();
    if (free_now)
      l->end(nullptr, boost::asio::error::operation_aborted);
    return;
  }

  // A cancel found the request empty of buffers: more may be in the ring
  // again by now (released on other threads).
  const bool refilled = (res == -ENOBUFS && !more) ? l->pool_.refill() : false;
  bool give_back = false;

  st->lock_.lock();
  if (!more)
    l->armed_ = false;
  if (res > 0 && has_buffer)
  {
    l->pool_.set_pending(id, static_cast<std::uint32_t>(res));
    if (l->pend_tail_ == nil_pending)
      l->pend_head_ = pending_id(id);
    else
      l->pool_.link_pending(l->pend_tail_, id);
    l->pend_tail_ = pending_id(id);
  }
  else
  {
    give_back = has_buffer;
    if (l->final_ == 0)
    {
      if (res == 0)
        l->final_ = end_of_stream;
      else if (res == -ENOBUFS)
        ;  // the kernel's ring ran dry: see park below

      else if (res < 0)
        l->final_ = static_cast<std::int16_t>(-res);
    }
  }
  // A request ended by the kernel without a reason to end the loop (an
  // ENOBUFS after a refill, a CQ overflow) is armed again by the loop's
  // next step; a cancelled loop ends instead.
  if (!more && l->final_ == 0 && l->stop_)
    l->final_ = ECANCELED;
  // The ring ran dry and the loop holds no chunk (whose buffer would come
  // back as the handler consumes it) and is not being run (a run would arm
  // the request again anyway): it waits for a buffer. Buffers released on
  // other threads have just been put back (refilled): armed again at once.
  const bool park = res == -ENOBUFS && !more && !refilled && l->final_ == 0
    && l->pend_head_ == nil_pending && !l->queued_;
  const bool run = !park && !l->queued_ && (l->pend_head_ != nil_pending || !l->armed_);
  if (park)
    l->parked_ = true;
  if (run || park)
    l->queued_ = true;
  st->lock_.unlock();
  if (park)
  {
    if (give_back)
      l->pool_.give_back(id);
    return l->wait_for_buffer(s);
  }

  if (give_back)
    l->pool_.give_back(id);
  if (!run)
    return;
  if (r.retiring())
  {
    // The thread leaves (its ring is being emptied): the rest happens on
    // whichever thread runs the context next.
    l->queue(s, nullptr);
  }
  else
  {
    // Into the harvest's output, then the runner's queue, from which any
    // thread may take it: the unit goes to the shared count at once (a
    // private count is published only when a handler returns, and the
    // harvest may run outside one: a thief could finish the unit first).
    s.work_started();
    out.push(l);
  }
#else
  (void)l; (void)r; (void)res; (void)flags; (void)out;
#endif
}

bool receive_loop_base::mark_stop() noexcept
{
  stop_ = true;
  if (parked_ && !queued_)
  {
    // Waiting for a buffer: the loop's next step takes it off the list.
    queued_ = true;
    return true;
  }
  if (mode_ == mode_type::multishot && armed_ && !queued_ && !cancel_sent_)
  {
    // Nothing else would look at the loop before data arrives: it goes to
    // its home runner, which cancels the request (step).
    queued_ = true;
    return true;
  }
  return false;
}

void receive_loop_base::dispatch_stop() noexcept
{
  // A loop waiting for a buffer leaves the pool's list before it is queued:
  // the list's link is the queue's (wait_next). (mark_stop took its turn,
  // so it cannot go on the list again meanwhile; a resume that took it off
  // first found the turn taken and left the queueing to us.)
  pool_.unpark(this);
  queue(owner(), home());
}

void receive_loop_base::wait_for_buffer(scheduler& s) noexcept
{
  socket_state* st = state_;
  const bool listed = pool_.park(this, epoch_);
  st->lock_.lock();
  if (listed && parked_ && !stop_)
  {
    // Waiting: a give_back resumes it (resume), a cancel queues it (mark_stop).
    queued_ = false;
    st->lock_.unlock();
    return;
  }
  // Not listed (a buffer came back since the request: try again), resumed
  // already, or cancelled meanwhile: off the list, and its next step runs.
  const bool still_listed = listed && parked_;
  st->lock_.unlock();
  if (still_listed)
    pool_.unpark(this);
  st->lock_.lock();
  parked_ = false;
  st->lock_.unlock();
  queue(s, nullptr);
}

void receive_loop_base::resume(receive_loop_base* l) noexcept
{
  socket_state* st = l->state_;
  st->lock_.lock();
  l->parked_ = false;
  const bool run = !l->queued_;
  l->queued_ = true;
  st->lock_.unlock();
  if (run)
    l->queue(l->owner(), nullptr);
}

void receive_loop_base::forked_end(runner& r) noexcept
{
  socket_state* st = state_;
  st->lock_.lock();
  const bool run = !queued_;
  queued_ = true;
  st->lock_.unlock();
  if (run)
    queue(r.owner(), nullptr);
}

void receive_loop_base::arm_chain(socket_state* st) noexcept
{
  epoch_ = pool_.returns();
  auto* op = ::new (static_cast<void*>(step_)) step_op(this, pool_, flags_);
  step_live_ = true;
  // A cancellation slot of the loop cancels the step through this key.
  op->cancellation_key_ = this;
  boost::asio::cancellation_slot none;
  st->service_->start(op, st, none);
}

void receive_loop_base::end_later(scheduler& s, int err) noexcept
{
  final_ = static_cast<std::int16_t>(err);
  queued_ = true;
  queue(s, nullptr);
}

void receive_loop_base::after_chunk(scheduler& s) noexcept
{
  // Called as the handler returns (also by unwinding): it must not throw,
  // so whatever may call the handler again (a chunk, the end) goes through
  // the run loop.
  socket_state* st = state_;
  st->lock_.lock();
  if (mode_ == mode_type::multishot)
  {
    const bool deliver = pend_head_ != nil_pending || (final_ != 0 && !armed_);
    const bool to_cancel = stop_ && armed_ && !cancel_sent_;
    const bool to_arm = !armed_ && !parked_ && final_ == 0;
    if (deliver || to_cancel || (to_arm && (stop_ || s.this_thread_runner() != home())))
    {
      // One chunk per run (other work goes between); the end, a cancel and
      // an arm away from the home runner are steps of their own (step).
      st->lock_.unlock();
      return queue(s, nullptr);
    }
    queued_ = false;
    if (to_arm)
    {
      armed_ = true;
      cancel_sent_ = false;
    }
    st->lock_.unlock();
    if (to_arm)
      arm_ring(*home());
    return;
  }
  // Chain. close() and cancel() mark the loop before they let the state go,
  // so a state closed (and maybe reclaimed) while the handler ran reads stop_.
  const bool stop = stop_;
  if (stop)
  {
    final_ = ECANCELED;
    queued_ = true;
  }
  st->lock_.unlock();
  if (stop)
    queue(s, nullptr);
  else
    arm_chain(st);
}

void receive_loop_base::step_op::do_complete(scheduler* owner, operation* base)
{
  auto* o = static_cast<step_op*>(base);
  if (!o->finish())
    return;
  boost::system::error_code ec;
  provided_buffer b;
  o->results(ec, b, owner != nullptr);
  receive_loop_base* l = o->loop_;
  o->~step_op();
  l->step_live_ = false;
  l->on_step(owner, ec, std::move(b));
}

void receive_loop_base::on_step(scheduler* owner, boost::system::error_code ec,
    provided_buffer b)
{
  if (owner == nullptr)
    return end(nullptr, boost::asio::error::operation_aborted);
  if (ec == boost::asio::error::no_buffer_space && state_ != nullptr)
  {
    // Every buffer of the pool is held: wait for one (a cancel meanwhile
    // ends the loop).
    socket_state* st = state_;
    st->lock_.lock();
    const bool stop = stop_;
    if (!stop)
      parked_ = queued_ = true;
    st->lock_.unlock();
    if (stop)
      return end(owner, boost::asio::error::operation_aborted);
    return wait_for_buffer(*owner);
  }
  if (ec)
    return end(owner, ec);
  // A chunk. A loop marked to stop meanwhile still delivers it (the data has
  // left the socket) and ends after the call (after_chunk).
  deliver_(this, owner, ec, &b);
}

void receive_loop_base::end(scheduler* owner, const boost::system::error_code& ec)
{
  // The state may have been closed, reclaimed and handed to another socket
  // meanwhile (reclaim forgets the loop): only our own entry is cleared.
  socket_state* st = state_;
  st->lock_.lock();
  const bool mine = st->recv_loop_ == this;
  if (mine)
    st->recv_loop_ = nullptr;
  // A close() while the multishot request was in the ring left the
  // descriptor open for it (holds_request): the last holder closes it.
  const bool drained = mine && !st->open_ && st->ops_ == nullptr && st->accept_ == nullptr;
  st->lock_.unlock();
  if (drained)
    st->service_->reclaim(st);
  deliver_(this, owner, ec, nullptr);
}

void receive_loop_cancellation::operator()(boost::asio::cancellation_type_t type)
{
  using boost::asio::cancellation_type;
  if (!!(type & (cancellation_type::terminal | cancellation_type::partial
          | cancellation_type::total)))
    state_->service_->cancel_receive_loop(*state_, key_);
}

} // namespace detail
} // namespace zokio
