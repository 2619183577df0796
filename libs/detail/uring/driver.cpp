// libs/detail/uring/driver.cpp: a thread's ring: submission, harvesting,
// sleep (the protocol is at the top of driver.hpp).
#include "detail/uring/driver.hpp"

#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/uring/multishot_operation.hpp>
#include <zokio/detail/socket/receive_loop.hpp>
#include <zokio/detail/uring/net_features.hpp>
#include <zokio/detail/socket/ops/waitid_op.hpp>
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include "detail/sigpipe.hpp"
#include "detail/throw_errno.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>
#include <poll.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zokio {
namespace detail {

// As liburing 2.5's io_uring_prep_waitid, by hand (liburing 2.3).
void prepare_waitid_sqe(::io_uring_sqe* sqe, int pid, ::siginfo_t* info) noexcept
{
  const std::uint64_t user_data = sqe->user_data;
  std::memset(sqe, 0, sizeof(*sqe));
  sqe->opcode = uring::op_waitid;
  sqe->fd = pid;
  sqe->len = P_PID;
  sqe->file_index = WEXITED;
  sqe->addr2 = reinterpret_cast<std::uint64_t>(info);
  sqe->user_data = user_data;
}

void multishot_operation::tag_sqe(::io_uring_sqe* sqe, multishot_operation* op) noexcept
{
  ::io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(op) | tag);
}

namespace uring {
namespace {

// After a receive that emptied the socket the next one would find nothing:
// arm poll first and save the failed attempt (linux 5.19).
inline void apply_hints(const io_request& q, ::io_uring_sqe* sqe) noexcept
{
  if ((q.hints & io_request::poll_first) && features().recv_poll_first)
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
}

// ZOKIO_URING_RW_NOWAIT=1 (tests): stream reads and writes that may wait
// for readiness (io_request::poll_then_retry) are submitted with
// RWF_NOWAIT, so the kernel refuses them with EAGAIN when they would wait,
// as older kernels do for every O_NONBLOCK descriptor: the poll-and-retry
// path then runs on any kernel.
bool rw_nowait_for_tests() noexcept
{
  static const bool on = [] {
    const char* v = std::getenv("ZOKIO_URING_RW_NOWAIT");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

inline std::uint64_t offset_of(const io_request& q) noexcept
{
  // -1 as an unsigned offset: the file's current position (IORING_FEAT_RW_CUR_POS, 5.6).
  return q.offset < 0 ? ~std::uint64_t(0) : static_cast<std::uint64_t>(q.offset);
}

// Fills sqe with a transfer (read, readv, write, writev), fsync, or one of
// the file requests (openat, statx, ftruncate: socket_service only starts
// those where features() says the ring has them).
void fill_transfer(const io_request& q, ::io_uring_sqe* sqe) noexcept
{
  const unsigned count = static_cast<unsigned>(q.size);
  switch (q.kind)
  {
  case io_request::read:
    ::io_uring_prep_read(sqe, q.fd, q.data, count, offset_of(q));
    break;
  case io_request::readv:
    ::io_uring_prep_readv(sqe, q.fd, static_cast<const ::iovec*>(q.data), count, offset_of(q));
    break;
  case io_request::write:
    ::io_uring_prep_write(sqe, q.fd, q.data, count, offset_of(q));
    break;
  case io_request::writev:
    ::io_uring_prep_writev(sqe, q.fd, static_cast<const ::iovec*>(q.data), count, offset_of(q));
    break;
  case io_request::fsync:
    ::io_uring_prep_fsync(sqe, q.fd, q.flags == io_request::fsync_data ? IORING_FSYNC_DATASYNC : 0);
    return;
  case io_request::openat:
    ::io_uring_prep_openat(sqe, AT_FDCWD, static_cast<const char*>(q.data), q.flags | O_CLOEXEC,
        static_cast<::mode_t>(q.size));
    return;
  case io_request::statx:
    ::io_uring_prep_statx(sqe, q.fd, "", AT_EMPTY_PATH, STATX_SIZE,
        static_cast<struct ::statx*>(q.data));
    return;
  default: // ftruncate
  {
    // IORING_OP_FTRUNCATE (6.9): fd and the length in off, nothing else
    // (liburing 2.3 has no prep function for it).
    const std::uint64_t user_data = sqe->user_data;
    std::memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = uring::op_ftruncate;
    sqe->fd = q.fd;
    sqe->off = static_cast<std::uint64_t>(q.offset);
    sqe->user_data = user_data;
    return;
  }
  }
  if ((q.hints & io_request::poll_then_retry) && rw_nowait_for_tests())
    sqe->rw_flags |= RWF_NOWAIT;
}

// Fills sqe from op's request (user_data is the caller's).
void fill_sqe(io_operation* op, ::io_uring_sqe* sqe) noexcept
{
  const io_request& q = op->req_;
  if (op->cancelled_ && q.kind != io_request::custom && q.kind != io_request::cancel)
  {
    // Cancelled before its SQE could be prepared: a NOP stands in for it
    // and it completes as cancelled (socket_op::result).
    ::io_uring_prep_nop(sqe);
    op->nop_ = true;
    op->polling_ = false;  // the NOP's CQE is the operation's last
    return;
  }
  if (op->polling_)
  {
    // Waiting for the readiness a refused transfer needs (see reap).
    const bool out = q.kind == io_request::write || q.kind == io_request::writev;
    ::io_uring_prep_poll_add(sqe, q.fd, out ? POLLOUT : POLLIN);
    return;
  }
  switch (q.kind)
  {
  case io_request::nop:
    ::io_uring_prep_nop(sqe);
    break;
  case io_request::recv:
    ::io_uring_prep_recv(sqe, q.fd, q.data, q.size, q.flags);
    apply_hints(q, sqe);
    break;
  case io_request::recvmsg:
    ::io_uring_prep_recvmsg(sqe, q.fd, static_cast<::msghdr*>(q.data),
        static_cast<unsigned>(q.flags));
    apply_hints(q, sqe);
    break;
  case io_request::send:
    ::io_uring_prep_send(sqe, q.fd, q.data, q.size, q.flags);
    break;
  case io_request::sendmsg:
    ::io_uring_prep_sendmsg(sqe, q.fd, static_cast<const ::msghdr*>(q.data),
        static_cast<unsigned>(q.flags));
    break;
  case io_request::accept:
    ::io_uring_prep_accept(sqe, q.fd, static_cast<::sockaddr*>(q.data),
        static_cast<::socklen_t*>(q.extra), SOCK_CLOEXEC);
    break;
  case io_request::connect:
    ::io_uring_prep_connect(sqe, q.fd, static_cast<const ::sockaddr*>(q.data),
        static_cast<::socklen_t>(q.size));
    break;
  case io_request::poll:
    ::io_uring_prep_poll_add(sqe, q.fd, static_cast<unsigned>(q.flags));
    break;
  case io_request::recv_pooled:
  {
    // On the pool's home runner's thread (the operation is routed there).
    auto& p = *static_cast<provided_buffer_pool*>(q.data);
    unsigned len = static_cast<unsigned>(q.size);
    if (p.prepare_kernel_mode())
    {
      ::io_uring_prep_recv(sqe, q.fd, nullptr, len, q.flags);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = p.group();
    }
    else
    {
      op->buffer_id_ = p.take();
      if (op->buffer_id_ == provided_buffer_pool::nil)
      {
        ::io_uring_prep_nop(sqe);
        op->no_buffer_ = true;
        return;
      }
      ::io_uring_prep_recv(sqe, q.fd, p.data_of(op->buffer_id_), len, q.flags);
    }
    apply_hints(q, sqe);
    break;
  }
  case io_request::read:
  case io_request::readv:
  case io_request::write:
  case io_request::writev:
  case io_request::fsync:
  case io_request::openat:
  case io_request::statx:
  case io_request::ftruncate:
    // A write to a pipe whose reader has gone raises SIGPIPE on the thread
    // that submits it (sigpipe.hpp); reap takes it after EPIPE.
    if (q.hints & io_request::no_sigpipe)
      sigpipe::block();
    fill_transfer(q, sqe);
    break;
  case io_request::cancel:
    ::io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(q.data), 0);
    break;
  case io_request::custom:
    op->prepare_(op, sqe);
    break;
  }
}

} // namespace

driver::driver(runner& r, const driver_sizes& sizes) : runner_(r), sizes_(sizes)
{
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    throw_errno(errno, "eventfd");
  try
  {
    create_ring();
  }
  catch (...)
  {
    ::close(wake_fd_);
    throw;
  }
}

driver::~driver()
{
  ring_.reset();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

void driver::create_ring()
{
  ring_ = std::make_unique<uring::ring>(sizes_);
  wake_armed_ = false;
  in_flight_ = 0;
  runner_.rings_.add();
}

void driver::renew()
{
  create_ring();
}

void driver::forked(io_operation* const* steps, std::size_t n, op_queue& out)
{
  // Lasting multishot requests, as if their last CQE came (their handlers
  // start nothing on a retiring ring).
  runner_.retiring_ = true;
  while (multishot_operation* m = armed_)
  {
    armed_ = m->armed_next_;
    if (armed_)
      armed_->armed_prev_ = nullptr;
    m->armed_prev_ = m->armed_next_ = nullptr;
    m->in_kernel_ = false;
    m->on_cqe(runner_, -ECANCELED, 0, out);
  }
  // Receive loops: their requests were in the parent's ring (marked under
  // their sockets' locks, then ended, as on a retiring ring).
  std::vector<receive_loop_base*> loops;
  bool all_loops = true;
  struct collect_loops
  {
    std::vector<receive_loop_base*>* into;
    bool* complete;
  } cl{&loops, &all_loops};
  runner_.owner().for_each_receive_loop(runner_,
      [](receive_loop_base* l, void* arg) noexcept {
        auto* c = static_cast<collect_loops*>(arg);
        l->mark_forked();
        try
        {
          c->into->push_back(l);
        }
        catch (...)
        {
          *c->complete = false;
        }
      },
      &cl);
  if (!all_loops)
    throw std::bad_alloc();
  for (receive_loop_base* l : loops)
    l->forked_end(runner_);
  runner_.retiring_ = false;

  for (std::size_t i = 0; i < n; ++i)
    if (io_operation* step = steps[i]; step && step->in_kernel_ && step->runner_ == &runner_)
    {
      step->in_kernel_ = false;
      step->result_ = -ECANCELED;
      runner_.internal_ready_.push(step);
    }

  // Socket operations: collected first (socket_op::forked takes the
  // socket's lock, which the visit holds).
  std::vector<io_operation*> held;
  struct collect
  {
    std::vector<io_operation*>* into;
    bool complete = true;
  } c{&held};
  runner_.owner().for_each_held(runner_,
      [](io_operation* op, void* arg) noexcept {
        auto* c = static_cast<collect*>(arg);
        try
        {
          c->into->push_back(op);
        }
        catch (...)
        {
          c->complete = false;
        }
      },
      &c);
  if (!c.complete)
    throw std::bad_alloc();
  for (io_operation* op : held)
    socket_op::forked(static_cast<socket_op*>(op), out);

  // Let go of the parent's objects: munmap and close only (the registered
  // ring descriptor was the parent thread's, and io_uring_queue_exit's
  // unregistering of it fails harmlessly in the child).
  ring_.reset();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
  wake_fd_ = -1;
  in_flight_ = 0;
  multishot_in_flight_ = 0;
  wake_armed_ = false;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    throw_errno(errno, "eventfd");
  create_ring();
}

void driver::abandon() noexcept
{
  // A read still in flight on the eventfd holds its own reference to the
  // file, and nothing writes to it any more (the scheduler is going away).
  ring_.reset();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
  wake_fd_ = -1;
}

::io_uring_sqe* driver::get_sqe()
{
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
  if (sqe == nullptr)
  {
    // The submission queue is full: hand what it holds to the kernel now.
    submit();
    sqe = ::io_uring_get_sqe(ring_->get());
  }
  return sqe;
}

bool driver::prepare_sleep()
{
  if (!wake_armed_)
  {
    // With no SQE free even after a flush, the sleep is bounded instead.
    if (::io_uring_sqe* sqe = get_sqe())
    {
      ::io_uring_prep_read(sqe, wake_fd_, &wake_buffer_, sizeof(wake_buffer_), 0);
      ::io_uring_sqe_set_data64(sqe, wake_tag);
      wake_armed_ = true;
    }
  }
  return wake_armed_;
}

bool driver::arm_receive_loop(receive_loop_base* l, int fd, std::uint16_t group,
    int flags) noexcept
{
  ::io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr)
    return false;
  ::io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, flags);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
  ::io_uring_sqe_set_data64(sqe, receive_loop_base::ring_user_data(l));
  ++in_flight_;
  return true;
}

void driver::cancel_receive_loop(receive_loop_base* l) noexcept
{
  ::io_uring_sqe* sqe = get_sqe();
  while (sqe == nullptr)
  {
    // Full even after a flush: the kernel pushed back; wait for room.
    ::io_uring_submit_and_wait(ring_->get(), 0);
    sqe = ::io_uring_get_sqe(ring_->get());
  }
  ::io_uring_prep_cancel64(sqe, receive_loop_base::ring_user_data(l), 0);
  ::io_uring_sqe_set_data64(sqe, ignore_tag);
}

void driver::start(io_operation* op)
{
  op->runner_ = &runner_;
  if (!backlog_.empty())
  {
    backlog_.push(op);
    return;
  }
  if (::io_uring_sqe* sqe = get_sqe())
    prepare_sqe(op, sqe);
  else
    backlog_.push(op);
}

void driver::prepare_sqe(io_operation* op, ::io_uring_sqe* sqe)
{
  // user_data first: a multishot operation's prepare tags it.
  ::io_uring_sqe_set_data(sqe, op);
  fill_sqe(op, sqe);
  ++in_flight_;
  op->in_kernel_ = true;
  if (sqe->user_data & multishot_operation::tag)
  {
    ++multishot_in_flight_;
    auto* m = static_cast<multishot_operation*>(op);
    if (m->lasting_)
    {
      // In the ring until its last CQE (reap unlinks it).
      m->retire_cancelled_ = false;
      m->armed_prev_ = nullptr;
      m->armed_next_ = armed_;
      if (armed_)
        armed_->armed_prev_ = m;
      armed_ = m;
    }
  }
}

void driver::start_internal(io_operation* op)
{
  op->runner_ = &runner_;
  ::io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr)
  {
    internal_backlog_.push(op);
    return;
  }
  fill_sqe(op, sqe);
  ::io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(op) | internal_bit);
  ++in_flight_;
  op->in_kernel_ = true;
}

void driver::cancel_internal(io_operation* op) noexcept
{
  ::io_uring* ring = ring_->get();
  const std::uint64_t data = reinterpret_cast<std::uintptr_t>(op) | internal_bit;
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
  if (sqe == nullptr)
  {
    ::io_uring_submit(ring);
    sqe = ::io_uring_get_sqe(ring);
    if (sqe == nullptr)
      return;
  }
  ::io_uring_prep_cancel64(sqe, data, 0);
  ::io_uring_sqe_set_data64(sqe, ignore_tag);
  // Wait until the step's completion is in the CQ (left there for the
  // runner's retirement to reap: nothing is consumed here).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;)
  {
    __kernel_timespec ts{0, 10'000'000};
    ::io_uring_cqe* cqe = nullptr;
    ::io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
    runner_.kernel_entries_.add();
    unsigned head;
    bool posted = false;
    io_uring_for_each_cqe(ring, head, cqe)
    {
      if (cqe->user_data == data)
        posted = true;
    }
    if (posted || std::chrono::steady_clock::now() >= give_up)
      return;
  }
}

void driver::flush_backlog()
{
  while (!internal_backlog_.empty())
  {
    ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
      return;
    auto* op = static_cast<io_operation*>(internal_backlog_.pop());
    fill_sqe(op, sqe);
    ::io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(op) | internal_bit);
    ++in_flight_;
    op->in_kernel_ = true;
  }
  while (!backlog_.empty())
  {
    ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
    {
      if (!submit())
        return;
      sqe = ::io_uring_get_sqe(ring_->get());
      if (sqe == nullptr)
        return;
    }
    prepare_sqe(static_cast<io_operation*>(backlog_.pop()), sqe);
  }
}

bool driver::submit()
{
  for (;;)
  {
    int n = ::io_uring_submit(ring_->get());
    runner_.kernel_entries_.add();
    if (n >= 0)
    {
      runner_.submissions_.add(static_cast<std::uint64_t>(n));
      return true;
    }
    if (n == -EINTR)
      continue;
    if (n == -EBUSY || n == -EAGAIN)
    {
      // The kernel holds overflowed completions or is short of memory; the
      // SQEs stay queued and go with the next enter, after a harvest.
      return false;
    }
    throw_errno(-n, "io_uring_submit");
  }
}

void driver::get_events()
{
  int r = ::io_uring_get_events(ring_->get());
  runner_.kernel_entries_.add();
  if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN)
    throw_errno(-r, "io_uring_get_events");
}

std::size_t driver::reap(op_queue& out)
{
  ::io_uring* ring = ring_->get();
  unsigned head;
  ::io_uring_cqe* cqe;
  unsigned n = 0;
  io_uring_for_each_cqe(ring, head, cqe)
  {
    ++n;
    std::uint64_t data = cqe->user_data;
    if (data == wake_tag)
    {
      wake_armed_ = false;
      runner_.wakeups_.add();
      continue;
    }
    if (data == ignore_tag)
      continue;
    if (data == evacuate_tag)
    {
      evacuate_result_ = cqe->res;
      continue;
    }
    if (data & internal_bit)
    {
      auto* op = reinterpret_cast<io_operation*>(data & ~internal_bit);
      op->in_kernel_ = false;
      op->result_ = cqe->res;
      op->result_flags_ = 0;
      --in_flight_;
      runner_.internal_ready_.push(op);
      continue;
    }
    if ((data & 7) == receive_loop_base::ring_tag)
    {
      // A receive loop's multishot receive, handled here once per CQE.
      if (!(cqe->flags & IORING_CQE_F_MORE))
        --in_flight_;
      receive_loop_base::on_ring_cqe(
          reinterpret_cast<receive_loop_base*>(data & ~std::uint64_t(7)), runner_, cqe->res,
          cqe->flags, out);
      continue;
    }
    if (data & multishot_operation::tag)
    {
      // Handled here, once per CQE (multishot_operation.hpp).
      auto* m = reinterpret_cast<multishot_operation*>(data & ~multishot_operation::tag);
      if (!(cqe->flags & IORING_CQE_F_MORE))
      {
        // Its last CQE: out of the ring (before on_cqe, which may arm it again).
        m->in_kernel_ = false;
        --in_flight_;
        --multishot_in_flight_;
        if (m->lasting_)
        {
          if (m->armed_prev_)
            m->armed_prev_->armed_next_ = m->armed_next_;
          else
            armed_ = m->armed_next_;
          if (m->armed_next_)
            m->armed_next_->armed_prev_ = m->armed_prev_;
          m->armed_prev_ = m->armed_next_ = nullptr;
        }
      }
      m->on_cqe(runner_, cqe->res, cqe->flags, out);
      continue;
    }
    auto* op = reinterpret_cast<io_operation*>(data);
    --in_flight_;
    op->in_kernel_ = false;
    if (op->req_.hints & (io_request::poll_then_retry | io_request::no_sigpipe))
      if (!transfer_outcome(op, cqe->res))
        continue;  // submitted again
    op->result_ = cqe->res;
    op->result_flags_ = (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY)
      ? io_operation::flag_socket_nonempty : 0u;
    if (cqe->flags & IORING_CQE_F_BUFFER)
      op->buffer_id_ = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    out.push(op);
  }
  if (n)
  {
    ::io_uring_cq_advance(ring, n);
    runner_.completions_.add(n);
    runner_.batches_.add();
    runner_.max_batch_.raise_to(n);
  }
  return n;
}

bool driver::transfer_outcome(io_operation* op, int res)
{
  if (op->req_.hints & io_request::poll_then_retry)
  {
    if (op->polling_)
    {
      // The readiness came (or an error, or POLLHUP: the retried transfer
      // reports it); a failed poll (cancelled) is the operation's result.
      op->polling_ = false;
      if (res >= 0)
      {
        start(op);
        return false;
      }
    }
    else if (res == -EAGAIN)
    {
      // The descriptor is O_NONBLOCK and this kernel does not wait for it:
      // wait for readiness, under the same user_data (a cancel finds the
      // poll as it would have found the transfer; one started after this
      // point finds cancelled_ set and fill_sqe makes a NOP).
      op->polling_ = true;
      start(op);
      return false;
    }
  }
  if (res == -EPIPE && (op->req_.hints & io_request::no_sigpipe))
    sigpipe::consume();
  return true;
}

bool driver::retire(op_queue& out) noexcept
{
  if (multishot_in_flight_ == 0)
    return true;
  runner_.retiring_ = true;
  ::io_uring* ring = ring_->get();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::nanoseconds(retire_limit_ns);
  for (;;)
  {
    // Cancel what is armed and not cancelled yet: each request once (CQE
    // handlers start nothing on a retiring ring, multishot_operation.hpp).
    // The cancels' own CQEs carry ignore_tag.
    for (multishot_operation* m = armed_; m; m = m->armed_next_)
    {
      if (m->retire_cancelled_)
        continue;
      ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
      if (sqe == nullptr)
      {
        ::io_uring_submit(ring);
        sqe = ::io_uring_get_sqe(ring);
        if (sqe == nullptr)
          break; // the next pass tries again
      }
      ::io_uring_prep_cancel64(sqe, multishot_operation::user_data(m), 0);
      ::io_uring_sqe_set_data64(sqe, ignore_tag);
      m->retire_cancelled_ = true;
    }
    if (multishot_in_flight_ == 0 || std::chrono::steady_clock::now() >= give_up)
      break;
    // Submits the cancels, runs the ring's task work (DEFER_TASKRUN) and
    // waits for a completion; errors (EINTR, EBUSY) only mean another pass.
    __kernel_timespec ts{0, 10'000'000};
    ::io_uring_cqe* cqe = nullptr;
    ::io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
    runner_.kernel_entries_.add();
    reap(out);
  }
  // Cancels prepared but not yet submitted (the deadline passed) go now.
  if (ring_->sq_pending() != 0)
    ::io_uring_submit(ring);
  runner_.retiring_ = false;
  return multishot_in_flight_ == 0;
}

std::size_t driver::evacuate(op_queue& out) noexcept
{
  while (!backlog_.empty())
  {
    auto* op = static_cast<io_operation*>(backlog_.pop());
    op->result_ = -ECANCELED;
    out.push(op);
  }
  if (!ring_ || in_flight_ == 0)
    return 0;
  ::io_uring* ring = ring_->get();
  evacuate_result_ = 1;
  bool asked = cancel_all(evacuate_tag);
  // CQE handlers start nothing on a retiring ring (multishot_operation.hpp).
  runner_.retiring_ = true;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (in_flight_ != 0 && std::chrono::steady_clock::now() < give_up)
  {
    __kernel_timespec ts{0, 10'000'000};
    ::io_uring_cqe* cqe = nullptr;
    ::io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
    runner_.kernel_entries_.add();
    reap(out);
    // The cancel itself failed (EINVAL: CANCEL_ANY probed but refused).
    if (evacuate_result_ < 0 && evacuate_result_ != -ENOENT)
      break;
    // Cancels that found no SQE (a full queue the kernel pushed back) are
    // asked again; a request cancelled twice answers the second -ENOENT
    // or -EALREADY.
    if (!asked)
      asked = cancel_all(evacuate_tag);
  }
  runner_.retiring_ = false;
  return in_flight_;
}

bool driver::cancel_all(std::uint64_t tag) noexcept
{
  struct visit
  {
    ::io_uring* ring;
    bool all = true;

    // One IORING_OP_ASYNC_CANCEL (linux 5.5) with flags, its CQE tagged
    // cqe_tag. A full queue is handed to the kernel once first.
    void cancel(std::uint64_t user_data, unsigned flags = 0,
        std::uint64_t cqe_tag = ignore_tag) noexcept
    {
      ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
      if (sqe == nullptr)
      {
        ::io_uring_submit(ring);
        sqe = ::io_uring_get_sqe(ring);
      }
      if (sqe == nullptr)
      {
        all = false;
        return;
      }
      ::io_uring_prep_cancel64(sqe, user_data, flags);
      ::io_uring_sqe_set_data64(sqe, cqe_tag);
    }
  } v{ring_->get()};

  if (features().cancel_any)
  {
    v.cancel(0, IORING_ASYNC_CANCEL_ANY, tag);
    return v.all;
  }

  // Before 5.19, one cancel per request. What can stay in a ring: the
  // lasting multishot requests (armed_), socket operations (the sockets
  // know theirs, with their home runner) and the idle hooks' internal
  // steps (the Asio bridge's poll, the signal pipe read). Everything else
  // completes by itself (NOPs, cancel steps, file requests being made). An
  // operation already reaped, or still in the backlog, answers -ENOENT: nothing else
  // is started on this thread meanwhile, so no other request can have its
  // address.
  for (multishot_operation* m = armed_; m; m = m->armed_next_)
    v.cancel(multishot_operation::user_data(m));
  runner_.owner().for_each_receive_loop(runner_,
      [](receive_loop_base* l, void* arg) noexcept {
        static_cast<visit*>(arg)->cancel(receive_loop_base::ring_user_data(l));
      },
      &v);
  runner_.owner().for_each_held(runner_,
      [](io_operation* op, void* arg) noexcept {
        static_cast<visit*>(arg)->cancel(reinterpret_cast<std::uintptr_t>(op));
      },
      &v);
  struct own_steps
  {
    visit* v;
    runner* here;
  } steps{&v, &runner_};
  runner_.owner().for_each_internal_step(
      [](io_operation* step, void* arg) noexcept {
        auto* s = static_cast<own_steps*>(arg);
        if (step->runner_ == s->here && step->in_kernel_)
          s->v->cancel(reinterpret_cast<std::uintptr_t>(step) | internal_bit);
      },
      &steps);
  return v.all;
}

void driver::shutdown_on_owner() noexcept
{
  if (!ring_ || in_flight_ == 0)
    return;
  // Ask the kernel to cancel everything still in flight (cancel_all),
  // then wait a bounded time for the completions, destroying each
  // operation as it comes back.
  bool asked = cancel_all(ignore_tag);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  op_queue reaped;
  while (in_flight_ != 0 && std::chrono::steady_clock::now() < give_up)
  {
    if (!asked)
      asked = cancel_all(ignore_tag);
    try
    {
      sleep(10'000'000);
    }
    catch (...)
    {
      break;
    }
    reap(reaped);
    reaped.clear();
  }
}

void driver::sleep(std::int64_t timeout_ns)
{
  ::io_uring_cqe* cqe = nullptr;
  __kernel_timespec ts;
  __kernel_timespec* tsp = nullptr;
  if (timeout_ns != scheduler::no_deadline)
  {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tsp = &ts;
  }
  unsigned pending = ring_->sq_pending();
  runner_.sleeps_.add();
  int r = ::io_uring_submit_and_wait_timeout(ring_->get(), &cqe, 1, tsp, nullptr);
  runner_.kernel_entries_.add();
  if (r >= 0 || r == -ETIME)
    runner_.submissions_.add(pending);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
    throw_errno(-r, "io_uring_submit_and_wait_timeout");
}

void driver::wake() noexcept
{
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

} // namespace uring
} // namespace detail
} // namespace zokio
