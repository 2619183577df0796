// libs/detail/uring/accept_engine.cpp: multishot accept (the protocol is at
// the top of accept_engine.hpp).
#include <zokio/detail/uring/accept_engine.hpp>

#include <zokio/detail/sched/runner.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/detail/socket/socket_state.hpp>

#include "detail/uring/driver.hpp"

#include <cerrno>
#include <new>

#include <sys/socket.h>
#include <unistd.h>

namespace zokio {
namespace detail {

std::atomic<bool> accept_engine::refused_{false};
std::atomic<bool> accept_engine::simulate_refusal_{false};

namespace {

// An ioprio accept flag that no kernel defines (6.18 knows bits 0-2); the
// accept's preparation rejects unknown flags with EINVAL.
constexpr unsigned short unknown_accept_flag = 1u << 15;

// Whether fd is a listening socket: then an EINVAL or EOPNOTSUPP of a
// multishot accept is the kernel refusing the multishot flag, not the
// socket refusing accepts.
bool is_listening(int fd) noexcept
{
  int v = 0;
  ::socklen_t len = sizeof(v);
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v != 0;
}

} // namespace

void accept_engine::test_refuse(bool on) noexcept
{
  simulate_refusal_.store(on, std::memory_order_relaxed);
  if (!on)
    refused_.store(false, std::memory_order_relaxed);
}

accept_engine::accept_engine(socket_state& st) noexcept
  : state_(st), shot_op_(this), stop_op_(this)
{
}

accept_engine::~accept_engine()
{
  // Parked operations and queued descriptors are gone by now (close, or
  // abandon); the requests are not in flight (busy() was false).
  for (std::size_t i = ready_head_; i < ready_.size(); ++i)
    ::close(ready_[i]);
  waiters_.release();
}

bool accept_engine::start(scheduler& s, socket_state& st, socket_op* o)
{
  runner* here = s.this_thread_runner();
  // Relaxed (see refused_): read stale, the accept is parked and the
  // engine's next request is refused again.
  const bool refused = refused_.load(std::memory_order_relaxed);
  bool arm = false;
  int fd = -1;
  accept_engine* fresh = nullptr;
  st.lock_.lock();
  if (st.accept_ == nullptr && !refused)
  {
    // The first accept creates the engine, outside the lock (it allocates
    // and may throw: o untouched). Another thread's first accept may install
    // one meanwhile: then fresh is deleted below. Later accepts take the
    // lock once.
    st.lock_.unlock();
    fresh = new accept_engine(st);
    st.lock_.lock();
    if (st.accept_ == nullptr)
    {
      st.accept_ = fresh;
      fresh = nullptr;
    }
  }
  if (refused && (st.accept_ == nullptr || st.accept_->ready_head_ == st.accept_->ready_.size()))
  {
    // Multishot accept is refused: a single accept, unless a descriptor
    // accepted earlier waits here (never, when every request was refused).
    st.lock_.unlock();
    return false;
  }
  accept_engine& e = *st.accept_;
  o->link_prev_ = nullptr;
  o->link_next_ = st.ops_;
  if (st.ops_)
    st.ops_->link_prev_ = o;
  st.ops_ = o;
  o->home_ = nullptr;
  o->via_engine_ = true;
  if (e.ready_head_ < e.ready_.size())
  {
    fd = e.ready_[e.ready_head_++];
    if (e.ready_head_ == e.ready_.size())
    {
      e.ready_.clear();
      e.ready_head_ = 0;
    }
  }
  else
  {
    o->parked_ = true;
    e.waiters_.push(o);
    if (e.shot_ == shot_idle && !e.stop_busy_ && !e.stopping_)
    {
      e.shot_ = here ? shot_armed : shot_posted;
      e.shot_op_.runner_ = here;  // before the unlock: dispatch_stop reads it
      arm = true;
    }
  }
  st.lock_.unlock();
  delete fresh;  // lost a race with another thread's first accept

  // The operation counts as work until its handler has run; it may be
  // completed on any thread, so the shared count.
  s.work_started();
  if (fd >= 0)
  {
    // A descriptor was waiting: complete through the run loop, never inside
    // the initiating function.
    o->result_ = fd;
    s.post_deferred(o);
    return true;
  }
  if (arm)
  {
    if (here)
    {
      here->start(&e.shot_op_);
    }
    else
    {
      // Not on a thread of this context: a running thread arms it (do_arm).
      s.work_started();
      s.post_deferred(&e.shot_op_);
    }
  }
  return true;
}

bool accept_engine::unpark(socket_op* o) noexcept
{
  if (!o->parked_)
    return false;
  op_queue rest;
  while (operation* p = waiters_.pop())
    if (p != o)
      rest.push(p);
  waiters_.push(rest);
  o->parked_ = false;
  return true;
}

multishot_operation* accept_engine::request_stop() noexcept
{
  stopping_ = true;
  for (std::size_t i = ready_head_; i < ready_.size(); ++i)
    ::close(ready_[i]);
  ready_.clear();
  ready_head_ = 0;
  if (shot_ == shot_armed && !stop_busy_)
  {
    stop_busy_ = true;
    cancel_sent_ = true;
    return &stop_op_;
  }
  return nullptr;
}

void accept_engine::dispatch_stop(scheduler& s, multishot_operation* step) noexcept
{
  // The home runner is fixed while the request is armed (set by
  // runner::start before the lock that published shot_armed was released).
  runner* home = static_cast<stop_op*>(step)->engine_->shot_op_.runner_;
  if (s.this_thread_runner() == home)
  {
    home->start(step);
  }
  else
  {
    s.work_started();
    home->post_remote(step);  // do_start, on the home runner's thread
  }
}

void accept_engine::abandon() noexcept
{
  while (operation* op = waiters_.pop())
  {
    static_cast<socket_op*>(op)->parked_ = false;
    op->destroy();
  }
  for (std::size_t i = ready_head_; i < ready_.size(); ++i)
    ::close(ready_[i]);
  ready_.clear();
  ready_head_ = 0;
}

accept_engine::rearm_at accept_engine::should_rearm(runner& r) noexcept
{
  if (shot_ == shot_idle && !stop_busy_ && !stopping_ && state_.open_ && !waiters_.empty()
      && ready_head_ == ready_.size())
  {
    if (r.retiring())
    {
      // Its thread is leaving: not in that ring (see the header).
      shot_ = shot_posted;
      shot_op_.runner_ = nullptr;
      return rearm_at::elsewhere;
    }
    shot_ = shot_armed;
    shot_op_.runner_ = &r;
    return rearm_at::here;
  }
  return rearm_at::none;
}

void accept_engine::rearm(runner& r, rearm_at where) noexcept
{
  if (where == rearm_at::here)
  {
    r.start(&shot_op_);
  }
  else if (where == rearm_at::elsewhere)
  {
    // do_arm on a thread that runs the context; counted as work meanwhile,
    // as when an accept starts the request from outside the context. (The
    // retiring thread is in no run function of it: the inject queue.)
    scheduler& s = r.owner();
    s.work_started();
    s.post_deferred(&shot_op_);
  }
}

bool accept_engine::drained() const noexcept
{
  return !state_.open_ && state_.ops_ == nullptr && !busy();
}

// The request posted from outside the context, now on a running thread.
void accept_engine::shot_op::do_arm(scheduler* owner, operation* base)
{
  auto* op = static_cast<shot_op*>(base);
  accept_engine& e = *op->engine_;
  socket_state& st = e.state_;
  st.lock_.lock();
  bool go = owner && !e.stopping_ && st.open_;
  e.shot_ = go ? shot_armed : shot_idle;
  if (go)
    op->runner_ = owner->this_thread_runner();
  bool reclaim = !go && e.drained();
  st.lock_.unlock();
  if (go)
    owner->this_thread_runner()->start(op);
  else if (reclaim)
    st.service_->reclaim(&st);
}

void accept_engine::shot_op::do_prepare(io_operation* base, ::io_uring_sqe* sqe)
{
  auto* op = static_cast<shot_op*>(base);
  ::io_uring_prep_multishot_accept(sqe, op->engine_->state_.fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (simulate_refusal_.load(std::memory_order_relaxed))
    sqe->ioprio |= unknown_accept_flag;
  tag_sqe(sqe, op);
}

void accept_engine::shot_op::do_cqe(multishot_operation* base, runner& r, int res,
    unsigned flags, op_queue& out) noexcept
{
  auto* op = static_cast<shot_op*>(base);
  accept_engine& e = *op->engine_;
  socket_state& st = e.state_;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  int close_fd = -1;
  bool stop = false;
  op_queue single;  // parked accepts handed back after a refusal

  // A refusal needs a listening socket (a system call: before the lock; the
  // descriptor stays open while the request is busy()).
  const bool refusal_error = !more && (res == -EINVAL || res == -EOPNOTSUPP)
    && is_listening(st.fd_);

  st.lock_.lock();
  // Whether this request was cancelled by the engine (its stop may complete
  // before or after the request's last CQE).
  const bool cancelled_by_us = e.cancel_sent_;
  // The kernel refused the request itself: its first CQE, and an error.
  const bool refusal = refusal_error && !e.shot_delivered_;
  if (!more)
  {
    e.shot_ = shot_idle;
    e.cancel_sent_ = false;
    e.shot_delivered_ = false;
  }
  else
  {
    e.shot_delivered_ = true;
  }
  if (res >= 0)
  {
    if (e.stopping_ || !st.open_)
    {
      close_fd = res;
    }
    else if (operation* w = e.waiters_.pop())
    {
      auto* o = static_cast<socket_op*>(w);
      o->parked_ = false;
      o->result_ = res;
      out.push(o);
    }
    else
    {
      // May allocate while the queue grows to its high-water mark; steady
      // state reuses the capacity.
      try
      {
        e.ready_.push_back(res);
      }
      catch (...)
      {
        close_fd = res;  // no memory: the connection is dropped
      }
      // (Not on a retiring ring: retire has cancelled the request already.)
      if (more && e.ready_.size() - e.ready_head_ >= stop_at && !e.stop_busy_
          && !r.retiring())
      {
        e.stop_busy_ = true;
        e.cancel_sent_ = true;
        stop = true;
      }
    }
  }
  else if (res == -ECANCELED && !cancelled_by_us && !e.stopping_ && r.retiring())
  {
    // Cancelled by runner::retire: its thread leaves the context. Parked
    // accepts keep waiting; should_rearm below posts the request to another
    // thread if there are any.
  }
  else if (res == -ECANCELED && !cancelled_by_us && !e.stopping_)
  {
    // Cancelled by someone else: the context is shutting down
    // (uring::driver::cancel_all). Every parked operation completes aborted.
    while (operation* w = e.waiters_.pop())
    {
      auto* o = static_cast<socket_op*>(w);
      o->parked_ = false;
      o->result_ = -ECANCELED;
      out.push(o);
    }
  }
  else if (refusal)
  {
    // The kernel will not do multishot accept (see the header): recorded
    // for the process (relaxed: see refused_), and every parked accept is
    // handed back to be submitted as a single accept (after the unlock). They
    // stay linked to the socket and counted as work; unparked with home_
    // null, a cancel meanwhile marks them abort_, which their start step
    // honours, as for an accept started off the context's threads.
    refused_.store(true, std::memory_order_relaxed);
    while (operation* w = e.waiters_.pop())
    {
      auto* o = static_cast<socket_op*>(w);
      o->parked_ = false;
      o->via_engine_ = false;
      single.push(o);
    }
  }
  else if (res != -ECANCELED)
  {
    // EMFILE, ENFILE, ...: the oldest accept gets the error.
    if (operation* w = e.waiters_.pop())
    {
      auto* o = static_cast<socket_op*>(w);
      o->parked_ = false;
      o->result_ = res;
      out.push(o);
    }
  }
  rearm_at rearm = more ? rearm_at::none : e.should_rearm(r);
  bool reclaim = !more && e.drained();
  st.lock_.unlock();

  if (close_fd >= 0)
    ::close(close_fd);
  // Through the run loop (the scheduler's queue, or the inject queue from a
  // retiring thread), each on the ring of the thread that takes it; their
  // unit of work, counted since they were parked, now stands for that step.
  // Nobody else touches them meanwhile: unparked with home_ null, a cancel
  // only sets abort_, under the lock.
  while (operation* w = single.pop())
  {
    auto* o = static_cast<socket_op*>(w);
    o->set_func(&socket_op::start_step);
    r.owner().post_deferred(o);
  }
  if (stop)
    r.start(&e.stop_op_);
  e.rearm(r, rearm);
  if (reclaim)
    st.service_->reclaim(&st);
}

// The cancel handed over from another thread, on the home runner's thread.
void accept_engine::stop_op::do_start(scheduler* owner, operation* base)
{
  auto* op = static_cast<stop_op*>(base);
  accept_engine& e = *op->engine_;
  if (owner == nullptr)
  {
    // Destroyed unrun (shutdown; or its runner's thread left before taking
    // it): the request is cancelled by the scheduler or was by retirement.
    // If that was the last thing holding a closed acceptor, its descriptor
    // is closed now.
    socket_state& st = e.state_;
    st.lock_.lock();
    e.stop_busy_ = false;
    bool reclaim = e.drained();
    st.lock_.unlock();
    if (reclaim)
      st.service_->reclaim(&st);
    return;
  }
  owner->this_thread_runner()->start(op);
}

void accept_engine::stop_op::do_prepare(io_operation* base, ::io_uring_sqe* sqe)
{
  auto* op = static_cast<stop_op*>(base);
  ::io_uring_prep_cancel64(sqe, user_data(&op->engine_->shot_op_), 0);
  tag_sqe(sqe, op);
}

void accept_engine::stop_op::do_cqe(multishot_operation* base, runner& r, int, unsigned,
    op_queue&) noexcept
{
  auto* op = static_cast<stop_op*>(base);
  accept_engine& e = *op->engine_;
  socket_state& st = e.state_;
  st.lock_.lock();
  e.stop_busy_ = false;
  rearm_at rearm = e.should_rearm(r);
  bool reclaim = e.drained();
  st.lock_.unlock();
  e.rearm(r, rearm);
  if (reclaim)
    st.service_->reclaim(&st);
}

} // namespace detail
} // namespace zokio
