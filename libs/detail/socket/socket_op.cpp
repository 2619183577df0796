// libs/detail/socket/socket_op.cpp: start, completion gate and cancellation of
// socket operations (the protocol is at the top of socket_op.hpp).
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/detail/uring/accept_engine.hpp>
#include <zokio/detail/socket/receive_loop.hpp>

namespace zokio {
namespace detail {

void socket_op::start(scheduler& s)
{
  socket_state& st = *state_;
  if (drain_hint_ && st.recv_drained_.load(std::memory_order_relaxed))
    req_.hints |= io_request::poll_first;
  runner* here = s.this_thread_runner();
  runner* r = route_ ? route_(this, here) : here;
  st.lock_.lock();
  link_prev_ = nullptr;
  link_next_ = st.ops_;
  if (st.ops_)
    st.ops_->link_prev_ = this;
  st.ops_ = this;
  home_ = (r && r == here) ? r : nullptr;
  st.lock_.unlock();

  if (r && r == here)
  {
    r->work_started();
    r->start(this);
  }
  else if (r)
  {
    // Its driver belongs to another thread of this context: that thread
    // submits it (start_step, from its pinned queue).
    set_func(&start_step);
    s.work_started();
    r->post_remote(this);
  }
  else
  {
    // Not on a thread of this context: a running thread submits it.
    set_func(&start_step);
    s.work_started();
    s.post_deferred(this);
  }
}

void socket_op::start_step(scheduler* owner, operation* base)
{
  auto* o = static_cast<socket_op*>(base);
  if (owner == nullptr)
  {
    o->set_func(o->complete_);
    return o->complete_(nullptr, o);
  }

  runner* here = owner->this_thread_runner();
  runner* r = o->route_ ? o->route_(o, here) : here;
  socket_state& st = *o->state_;
  st.lock_.lock();
  // Routed to a ring whose thread has left for good (a provided-buffer
  // receive whose pool is bound there): it cannot be made; aborted.
  bool aborted = o->abort_ || (r && r != here && r->evacuated());
  if (!aborted && r == here)
    o->home_ = r;
  st.lock_.unlock();

  if (aborted)
  {
    // Cancelled before it reached a driver: complete it here (we are in the
    // run loop, not inside the initiating function).
    o->set_func(o->complete_);
    o->nop_ = true;
    return o->complete_(owner, o);
  }
  if (r != here)
  {
    // Routed to another runner's driver: send it on, keeping its unit counted
    // (a cancel meanwhile finds home_ null and sets abort_, seen there).
    owner->work_started();
    r->post_remote(o);
    return;
  }
  o->set_func(o->complete_);
  // The unit of work counted at initiation now stands for the request.
  r->work_started();
  r->start(o);
}

void socket_op::complete_now(scheduler& s, int result)
{
  state_ = nullptr;
  result_ = result;
  // Queued where any runner may take it (a local queue is stealable), so the
  // unit goes to the shared count at once, not to a private one.
  s.work_started();
  s.post_deferred(this);
}

bool socket_op::finish() noexcept
{
  socket_state* st = state_;
  if (st == nullptr)
    return true;
  st->lock_.lock();
  if (cancel_pending_)
  {
    deferred_ = true;
    st->lock_.unlock();
    return false;
  }
  if (link_prev_)
    link_prev_->link_next_ = link_next_;
  else
    st->ops_ = link_next_;
  if (link_next_)
    link_next_->link_prev_ = link_prev_;
  link_prev_ = link_next_ = nullptr;
  bool drained = !st->open_ && st->ops_ == nullptr && !(st->accept_ && st->accept_->busy())
    && !(st->recv_loop_ && st->recv_loop_->holds_request());
  st->lock_.unlock();
  if (drained)
    st->service_->reclaim(st);
  return true;
}

io_operation* socket_op::request_cancel() noexcept
{
  if (parked_ && state_->accept_->unpark(this))
  {
    // Waiting in the accept engine, not in the kernel: completes aborted.
    result_ = -ECANCELED;
    unparked_ = true;
    return &cancel_;
  }
  if (home_ == nullptr)
  {
    abort_ = true;
    return nullptr;
  }
  if (cancel_pending_)
    return nullptr;
  cancel_pending_ = true;
  return &cancel_;
}

void socket_op::dispatch_cancel(scheduler& s, io_operation* step) noexcept
{
  auto* c = static_cast<cancel_step*>(step);
  socket_op* o = c->target_;
  if (o->unparked_)
  {
    // Counted as work since it was parked; its completion reports the abort.
    o->unparked_ = false;
    s.post_deferred(o);
    return;
  }
  runner* home = o->home_;  // fixed once set (under the lock, before us)
  if (s.this_thread_runner() == home)
  {
    o->cancelled_ = true;
    c->set_done();
    home->work_started();
    home->start(c);
  }
  else
  {
    c->set_start();
    s.work_started();
    home->post_remote(c);
  }
}

bool socket_op::migrate(socket_op* o) noexcept
{
  socket_state* st = o->state_;
  if (st == nullptr)
    return false;
  st->lock_.lock();
  // A cancel step already exists (cancel_pending_): o stays with its home
  // runner, whose step handling knows the runner has left
  // (runner::evacuated_), and completes as cancelled.
  const bool again = o->migratable_ && o->route_ == nullptr && !o->cancel_pending_ && !o->abort_
    && !o->cancelled_ && o->result_ == -ECANCELED;
  if (!o->cancel_pending_)
    o->home_ = nullptr;
  st->lock_.unlock();
  if (!again)
    return false;
  // As before its first start: nothing of the cancelled request is kept.
  o->polling_ = false;
  o->nop_ = false;
  o->result_flags_ = 0;
  o->buffer_id_ = no_buffer_id;
  o->set_func(&start_step);
  return true;
}

void socket_op::forked(socket_op* o, op_queue& out) noexcept
{
  socket_state& st = *o->state_;
  const bool op_lost = o->in_kernel_;
  const bool step_lost = o->cancel_pending_ && o->cancel_.in_kernel_;
  o->in_kernel_ = false;
  o->cancel_.in_kernel_ = false;
  if (op_lost)
  {
    o->result_ = -ECANCELED;
    if (!o->cancel_pending_)
    {
      // As for a thread that left: made again (its function is then its
      // start), or completed as it is.
      (void)migrate(o);
      out.push(o);
      return;
    }
    st.lock_.lock();
    if (step_lost)
    {
      // Both gone: the cancellation is done.
      o->cancel_pending_ = false;
      o->cancelled_ = true;
      st.lock_.unlock();
      o->set_func(o->complete_);
      out.push(o);
      return;
    }
    // The step is still queued (handed to the home runner): when it runs,
    // it finds the operation completed (deferred_) and completes it.
    o->deferred_ = true;
    st.lock_.unlock();
    return;
  }
  if (step_lost)
  {
    // The operation had come back (or never reached the kernel) and only
    // its step was in the ring: finish what the step's completion would.
    st.lock_.lock();
    o->cancel_pending_ = false;
    const bool deferred = o->deferred_;
    st.lock_.unlock();
    if (deferred)
    {
      o->set_func(o->complete_);
      out.push(o);
    }
  }
}

// The step handed over from another thread, now on some runner's thread.
void socket_op::cancel_step::do_start(scheduler* owner, operation* base)
{
  auto* c = static_cast<cancel_step*>(base);
  socket_op* o = c->target_;
  if (owner == nullptr)
    return do_done(nullptr, base);

  runner* home = o->home_;  // fixed while the step exists (migrate keeps it)
  if (home->evacuated())
  {
    // Its runner's thread has left for good and emptied its ring
    // (scheduler::retire_this_thread): o is in no driver; it completes by
    // itself, or now if it completed while this step travelled.
    socket_state& st = *o->state_;
    st.lock_.lock();
    o->cancel_pending_ = false;
    const bool deferred = o->deferred_;
    st.lock_.unlock();
    if (deferred)
      o->complete_(owner, o);
    return;
  }

  runner* r = owner->this_thread_runner();
  if (r != home)
  {
    // Run by a thread other than the home runner's (not expected: steps
    // handed over go to the home runner's pinned_ queue, which nobody
    // steals; kept as a safety net): send it on, keeping its unit counted.
    owner->work_started();
    home->post_remote(c);
    return;
  }

  socket_state& st = *o->state_;
  st.lock_.lock();
  bool done = o->deferred_;
  if (done)
    o->cancel_pending_ = false;
  st.lock_.unlock();
  if (done)
  {
    // The operation finished while the step travelled: nothing to cancel.
    return o->complete_(owner, o);
  }

  o->cancelled_ = true;
  c->set_done();
  r->work_started();
  r->start(c);
}

// The cancel request's completion: the operation may complete now.
void socket_op::cancel_step::do_done(scheduler* owner, operation* base)
{
  auto* c = static_cast<cancel_step*>(base);
  socket_op* o = c->target_;
  socket_state& st = *o->state_;
  st.lock_.lock();
  o->cancel_pending_ = false;
  bool deferred = o->deferred_;
  st.lock_.unlock();
  if (deferred)
    o->complete_(owner, o);
}

void socket_op_cancellation::operator()(boost::asio::cancellation_type_t type)
{
  using boost::asio::cancellation_type;
  if (!!(type & (cancellation_type::terminal | cancellation_type::partial
          | cancellation_type::total)))
    state_->service_->cancel_by_key(*state_, this);
}

} // namespace detail
} // namespace zokio
