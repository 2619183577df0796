// libs/detail/sched/runner.cpp: a runner's driver, and the seam's functions
// that are not inline (libs/detail/driver.hpp).
#include <zokio/detail/sched/runner.hpp>
#include <zokio/detail/sched/scheduler.hpp>

#include <zokio/error.hpp>

#include "detail/driver.hpp"

#include <boost/system/system_error.hpp>

namespace zokio {
namespace detail {

runner::runner(scheduler& owner, zokio::backend b, const driver_sizes& sizes)
  : owner_(owner),
    backend_(b),
    random_(static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(this) >> 6) | 1u)
{
  switch (b)
  {
#if defined(ZOKIO_HAS_EPOLL)
  case zokio::backend::epoll:
    driver_.epoll = new readiness::epoll_driver(*this, sizes);
    break;
#endif
#if defined(ZOKIO_HAS_KQUEUE)
  case zokio::backend::kqueue:
    driver_.kqueue = new readiness::kqueue_driver(*this, sizes);
    break;
#endif
#if defined(ZOKIO_HAS_IO_URING)
  case zokio::backend::io_uring:
    driver_.uring = new uring::driver(*this, sizes);
    break;
#endif
  default:
    throw boost::system::system_error(make_error_code(error::backend_unavailable),
        "zokio: this build lacks the backend chosen");
  }
}

runner::~runner()
{
  drv::with(*this, [](auto& d) { delete &d; });
}

void runner::start(io_operation* op)
{
  drv::with(*this, [op](auto& d) { d.start(op); });
}

void runner::start_internal(io_operation* op)
{
  drv::with(*this, [op](auto& d) { d.start_internal(op); });
}

void runner::cancel_internal(io_operation* op) noexcept
{
  drv::with(*this, [op](auto& d) { d.cancel_internal(op); });
}

void runner::wake() noexcept
{
  drv::with(*this, [](auto& d) { d.wake(); });
}

void runner::post_remote(operation* op) noexcept
{
  remote_.push(op);
  // Dekker with retire_this_thread, which sets evacuated_ and then drains
  // remote_ (both seq_cst, as push's exchange): either it sees this push
  // or this load sees the flag, and then this thread hands whatever
  // remote_ holds to the shared queue. A drain that finds the consumer lock
  // taken retries until remote_ looks empty, so a push that another drainer
  // missed (linked after its last pop) is taken here.
  if (evacuated_.load(std::memory_order_seq_cst))
  {
    op_queue moved;
    take_remote(moved);
    owner_.post_deferred(moved);
    return;
  }
  wake_if_sleeping();
}

void runner::take_remote(op_queue& out) noexcept
{
  while (remote_.maybe_nonempty())
  {
    if (!remote_.try_lock_consumer())
      continue;
    while (operation* o = remote_.pop())
      out.push(o);
    remote_.unlock_consumer();
  }
}

void runner::drain_remote(op_queue& out) noexcept
{
  out.push(pinned_);
  take_remote(out);
}

namespace drv {

void shutdown(runner& r, bool owner_here, bool owner_alive) noexcept
{
  switch (r.backend())
  {
#if defined(ZOKIO_HAS_IO_URING)
  case backend::io_uring:
  {
    uring::driver& d = r.uring_driver();
    d.drop_backlog();
    if (owner_here)
    {
      d.shutdown_on_owner();
    }
    else if (!owner_alive)
    {
      op_queue reaped;
      d.reap_orphaned(reaped);
      reaped.clear();
    }
    // Otherwise the ring belongs to a live thread and cannot be entered
    // from here; whatever is still in flight is left to the kernel (see
    // ~scheduler).
    return;
  }
#endif
  default:
    // Nothing of a readiness driver is in a kernel's hands: every
    // operation it holds is destroyed here, whichever thread owns it (none
    // runs the context any more).
    (void)owner_here;
    (void)owner_alive;
    with(r, [](auto& d) {
      if constexpr (requires { d.destroy_all(); })
        d.destroy_all();
    });
    return;
  }
}

bool take_over(runner& r, op_queue& out)
{
  switch (r.backend())
  {
#if defined(ZOKIO_HAS_IO_URING)
  case backend::io_uring:
  {
    // Collect the completions the kernel posted when it cancelled the old
    // thread's requests; give the runner a ring of the calling thread's.
    uring::driver& d = r.uring_driver();
    d.reap_orphaned(out);
    out.push(d.backlog());
    if (d.in_flight() != 0)
      return false;
    d.renew();
    return true;
  }
#endif
  default:
    with(r, [&out](auto& d) {
      if constexpr (requires { d.take_completed(out); })
        d.take_completed(out);
    });
    return true;
  }
}

void abandon(runner& r) noexcept
{
#if defined(ZOKIO_HAS_IO_URING)
  if (r.backend() == backend::io_uring)
    r.uring_driver().abandon();
#else
  (void)r;
#endif
}

} // namespace drv
} // namespace detail
} // namespace zokio
