// libs/detail/sched/runner.cpp: a thread's ring: submission, harvesting, sleep.
#include <zokio/detail/sched/runner.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/uring/multishot_operation.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <chrono>
#include <sys/eventfd.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace {

// user_data values that are not operations (operations are aligned, so
// neither value can be an operation's address).
constexpr std::uint64_t wake_tag = 1;    // the eventfd read
constexpr std::uint64_t ignore_tag = 3;  // completions nobody waits for
constexpr std::uint64_t internal_bit = 1; // or-ed into an internal step's address
// (multishot_operation::tag, 2, is or-ed into a multishot operation's.)

[[noreturn]] void throw_errno(int err, const char* what)
{
  throw boost::system::system_error(
      boost::system::error_code(err, boost::asio::error::get_system_category()), what);
}

} // namespace

runner::runner(scheduler& owner)
  : owner_(owner),
    random_(static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(this) >> 6) | 1u)
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

runner::~runner()
{
  ring_.reset();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

void runner::create_ring()
{
  ring_ = std::make_unique<uring::ring>(owner_.sizes_);
  wake_armed_ = false;
  in_flight_ = 0;
  rings_.add();
}

void runner::arm_wakeup()
{
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
  if (sqe == nullptr)
  {
    submit();
    sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
      return; // kernel pushed back; sleep() then only waits with a short timeout
  }
  ::io_uring_prep_read(sqe, wake_fd_, &wake_buffer_, sizeof(wake_buffer_), 0);
  ::io_uring_sqe_set_data64(sqe, wake_tag);
  wake_armed_ = true;
}

void runner::start(uring_operation* op)
{
  op->runner_ = this;
  if (!backlog_.empty())
  {
    backlog_.push(op);
    return;
  }
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
  if (sqe == nullptr)
  {
    // The submission queue is full: hand what it holds to the kernel now.
    submit();
    sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
    {
      backlog_.push(op);
      return;
    }
  }
  prepare_sqe(op, sqe);
}

void runner::prepare_sqe(uring_operation* op, ::io_uring_sqe* sqe)
{
  // user_data first: a multishot operation's prepare tags it.
  ::io_uring_sqe_set_data(sqe, op);
  op->prepare(sqe);
  ++in_flight_;
  if (sqe->user_data & multishot_operation::tag)
  {
    ++multishot_in_flight_;
    auto* m = static_cast<multishot_operation*>(op);
    if (m->lasting_)
    {
      // In the ring until its last CQE (runner::reap unlinks it).
      m->retire_cancelled_ = false;
      m->armed_prev_ = nullptr;
      m->armed_next_ = armed_;
      if (armed_)
        armed_->armed_prev_ = m;
      armed_ = m;
    }
  }
}

void runner::start_internal(uring_operation* op)
{
  op->runner_ = this;
  ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
  if (sqe == nullptr)
  {
    submit();
    sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
    {
      internal_backlog_.push(op);
      return;
    }
  }
  op->prepare(sqe);
  ::io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(op) | internal_bit);
  ++in_flight_;
}

void runner::flush_backlog()
{
  while (!internal_backlog_.empty())
  {
    ::io_uring_sqe* sqe = ::io_uring_get_sqe(ring_->get());
    if (sqe == nullptr)
      return;
    auto* op = static_cast<uring_operation*>(internal_backlog_.pop());
    op->prepare(sqe);
    ::io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(op) | internal_bit);
    ++in_flight_;
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
    prepare_sqe(static_cast<uring_operation*>(backlog_.pop()), sqe);
  }
}

bool runner::submit()
{
  for (;;)
  {
    int n = ::io_uring_submit(ring_->get());
    kernel_entries_.add();
    if (n >= 0)
    {
      submissions_.add(static_cast<std::uint64_t>(n));
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

void runner::enter_kernel_for_events()
{
  int r = ::io_uring_get_events(ring_->get());
  kernel_entries_.add();
  if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN)
    throw_errno(-r, "io_uring_get_events");
}

std::size_t runner::reap(op_queue& out)
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
      wakeups_.add();
      continue;
    }
    if (data == ignore_tag)
      continue;
    if (data & internal_bit)
    {
      auto* op = reinterpret_cast<uring_operation*>(data & ~internal_bit);
      op->result_ = cqe->res;
      op->cqe_flags_ = cqe->flags;
      --in_flight_;
      internal_ready_.push(op);
      continue;
    }
    if (data & multishot_operation::tag)
    {
      // Handled here, once per CQE (multishot_operation.hpp).
      auto* m = reinterpret_cast<multishot_operation*>(data & ~multishot_operation::tag);
      if (!(cqe->flags & IORING_CQE_F_MORE))
      {
        // Its last CQE: out of the ring (before on_cqe, which may arm it again).
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
      m->on_cqe(*this, cqe->res, cqe->flags, out);
      continue;
    }
    auto* op = reinterpret_cast<uring_operation*>(data);
    op->result_ = cqe->res;
    op->cqe_flags_ = cqe->flags;
    --in_flight_;
    out.push(op);
  }
  if (n)
  {
    ::io_uring_cq_advance(ring, n);
    completions_.add(n);
    batches_.add();
    max_batch_.raise_to(n);
  }
  return n;
}

bool runner::retire(op_queue& out) noexcept
{
  if (multishot_in_flight_ == 0)
    return true;
  retiring_ = true;
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
    kernel_entries_.add();
    reap(out);
  }
  // Cancels prepared but not yet submitted (the deadline passed) go now.
  if (ring_->sq_pending() != 0)
    ::io_uring_submit(ring);
  retiring_ = false;
  return multishot_in_flight_ == 0;
}

void runner::sleep(std::int64_t timeout_ns)
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
  sleeps_.add();
  int r = ::io_uring_submit_and_wait_timeout(ring_->get(), &cqe, 1, tsp, nullptr);
  kernel_entries_.add();
  if (r >= 0 || r == -ETIME)
    submissions_.add(pending);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
    throw_errno(-r, "io_uring_submit_and_wait_timeout");
}

void runner::post_remote(operation* op) noexcept
{
  remote_.push(op);
  if (sleeping_.load(std::memory_order_seq_cst)
      && sleeping_.exchange(false, std::memory_order_seq_cst))
  {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
}

} // namespace detail
} // namespace zokio
