// libs/detail/socket/receive_loop.cpp: the steps of a receive loop (the
// protocol is at the top of zokio/detail/socket/receive_loop.hpp).
#include <zokio/detail/socket/receive_loop.hpp>
#include <zokio/detail/socket/socket_service.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <cerrno>

namespace zokio {
namespace detail {

scheduler& receive_loop_base::owner() noexcept
{
  return service_.owner();
}

void receive_loop_base::work_done(scheduler& s) noexcept
{
  s.work_finished();
}

void receive_loop_base::begin(socket_state* st) noexcept
{
  scheduler& s = owner();
  // The loop's own unit: run() does not return while a loop waits for data,
  // as it does not while a read is pending. Given back after the last call.
  s.work_started();
  int err = EBADF;
  if (st != nullptr)
  {
    st->lock_.lock();
    if (st->recv_loop_ != nullptr)
    {
      err = EALREADY;  // one loop per socket: boost::asio::error::already_started
    }
    else if (st->open_)
    {
      st->recv_loop_ = this;
      state_ = st;
      err = 0;
    }
    st->lock_.unlock();
  }
  if (err != 0)
    return end_later(s, err);
  arm(st);
}

void receive_loop_base::arm(socket_state* st) noexcept
{
  auto* op = ::new (static_cast<void*>(step_storage_)) step_op(this, pool_, flags_);
  step_live_ = true;
  // A cancellation slot of the loop cancels the step through this key.
  op->cancellation_key_ = this;
  boost::asio::cancellation_slot none;
  service_.start(op, st, none);
}

void receive_loop_base::end_later(scheduler& s, int err) noexcept
{
  auto* op = ::new (static_cast<void*>(step_storage_)) step_op(this, pool_, flags_);
  step_live_ = true;
  op->complete_now(s, -err);
}

void receive_loop_base::after_chunk(scheduler& s) noexcept
{
  socket_state* st = state_;
  st->lock_.lock();
  // close() and cancel() mark the loop before they let the state go, so a
  // state closed (and maybe reclaimed) while the handler ran reads stop_.
  const bool stop = stop_;
  st->lock_.unlock();
  if (stop)
    end_later(s, ECANCELED);
  else
    arm(st);
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
  if (ec)
    return end(owner, ec);
  // A chunk. A loop marked to stop meanwhile still delivers it (the data has
  // left the socket) and ends after the call (after_chunk).
  deliver_(this, owner, ec, &b);
}

void receive_loop_base::end(scheduler* owner, const boost::system::error_code& ec)
{
  if (socket_state* st = state_)
  {
    // The state may have been closed, reclaimed and handed to another socket
    // meanwhile (reclaim forgets the loop): only our own entry is cleared.
    st->lock_.lock();
    if (st->recv_loop_ == this)
      st->recv_loop_ = nullptr;
    st->lock_.unlock();
    state_ = nullptr;
  }
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
