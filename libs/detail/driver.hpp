// libs/detail/driver.hpp: the seam between the scheduler and the kernel.
//
// Every backend has one driver class per thread that runs a context (owned by
// the runner): uring::driver (libs/detail/uring/driver.hpp) and the
// readiness drivers, epoll_driver and kqueue_driver
// (libs/detail/readiness/driver.hpp). They have the same members, listed
// here with what each means; the scheduler and the runner call them only
// through the functions below, each of which picks the driver with one
// switch on the runner's backend. The backend is chosen once per process
// (libs/detail/backend.cpp), so the switch always takes the same branch and
// no operation pays a virtual call.
//
//   start(op)            hand an operation to the driver (owner thread)
//   start_internal(op)   the same for an internal step (asio_bridge)
//   cancel_internal(op)  take an internal step out at once (thread leaving)
//   pending()            requests started and not yet handed to the kernel
//   flush()              prepare what waited for room (io_uring's backlog)
//   submit()             hand the pending requests to the kernel
//   completions_ready()  completions that reap() would find without a syscall
//   wants_events(idle)   completions wait in the kernel; idle: the caller is
//                        about to sleep anyway (which collects them)
//   get_events()         collect those without blocking
//   reap(out)            move completed operations to out (internal steps to
//                        the runner's internal_ready_)
//   prepare_sleep()      true if wake() can end the coming sleep
//   sleep(ns)            submit, then wait for a completion, wake() or ns
//   wake()               any thread: end the owner's sleep
//   in_flight()          operations the driver holds (the runner is not
//                        freed while any remain in a kernel's hands)
//   retire(out)          the owner thread leaves for good: end lasting
//                        requests (multishot accepts)
#ifndef ZOKIO_LIBS_DETAIL_DRIVER_HPP
#define ZOKIO_LIBS_DETAIL_DRIVER_HPP

#include <zokio/detail/sched/runner.hpp>

#include "detail/readiness/driver.hpp"
#if defined(ZOKIO_HAS_IO_URING)
#include "detail/uring/driver.hpp"
#endif

namespace zokio {
namespace detail {
namespace drv {

// Calls f with r's driver.
template <typename F>
inline decltype(auto) with(runner& r, F&& f)
{
  switch (r.backend())
  {
#if defined(ZOKIO_HAS_EPOLL)
  case backend::epoll:
    return f(r.epoll_driver());
#endif
#if defined(ZOKIO_HAS_KQUEUE)
  case backend::kqueue:
    return f(r.kqueue_driver());
#endif
#if defined(ZOKIO_HAS_IO_URING)
  default:
    return f(r.uring_driver());
#else
  default:
# if defined(ZOKIO_HAS_KQUEUE)
    return f(r.kqueue_driver());
# else
    return f(r.epoll_driver());
# endif
#endif
  }
}

inline unsigned pending(runner& r) noexcept
{
  return with(r, [](auto& d) { return d.pending(); });
}

inline void flush(runner& r) noexcept
{
  with(r, [](auto& d) { d.flush(); });
}

inline bool submit(runner& r)
{
  return with(r, [](auto& d) { return d.submit(); });
}

inline bool completions_ready(runner& r) noexcept
{
  return with(r, [](auto& d) { return d.completions_ready(); });
}

inline bool wants_events(runner& r, bool idle) noexcept
{
  return with(r, [idle](auto& d) { return d.wants_events(idle); });
}

inline void get_events(runner& r)
{
  with(r, [](auto& d) { d.get_events(); });
}

inline std::size_t reap(runner& r, op_queue& out)
{
  return with(r, [&out](auto& d) { return d.reap(out); });
}

inline bool prepare_sleep(runner& r)
{
  return with(r, [](auto& d) { return d.prepare_sleep(); });
}

inline void sleep(runner& r, std::int64_t timeout_ns)
{
  with(r, [timeout_ns](auto& d) { d.sleep(timeout_ns); });
}

inline std::size_t in_flight(runner& r) noexcept
{
  return with(r, [](auto& d) { return d.in_flight(); });
}

inline bool retire(runner& r, op_queue& out) noexcept
{
  return with(r, [&out](auto& d) { return d.retire(out); });
}

// After retire, when the owner leaves for good: the io_uring driver's
// requests are cancelled and reaped into out (uring::driver::evacuate);
// the readiness drivers' waiting operations leave as cancelled
// (readiness::driver::evacuate). True if the driver holds no operation now.
inline bool evacuate(runner& r, op_queue& out) noexcept
{
  return with(r, [&out](auto& d) -> bool {
    if constexpr (requires { d.evacuate(out); })
      return d.evacuate(out) == 0;
    else
      return false;
  });
}

// Shutdown of the scheduler, for one runner. owner_here: the calling thread
// owns the runner; owner_alive: its owner thread has not exited. Queued
// operations are destroyed; the io_uring driver can only reach what is in
// its ring from its owner thread (or once that thread has exited).
void shutdown(runner& r, bool owner_here, bool owner_alive) noexcept;

// Another thread takes over r, whose owner thread has exited: what r had
// completed (or the kernel cancelled) goes to out. False if r cannot be
// reused (io_uring: requests still in its old ring).
bool take_over(runner& r, op_queue& out);

// A child after fork(), on its only thread: the driver replaces the
// kernel objects it had from the parent (scheduler::notify_fork). Internal
// steps in `steps` (the idle hooks') that r's driver held complete with
// -ECANCELED; socket operations the parent's ring held are made again or
// completed (to out). Throws system_error if a new object cannot be made.
inline void forked(runner& r, io_operation* const* steps, std::size_t n, op_queue& out)
{
  with(r, [&](auto& d) { d.forked(steps, n, out); });
}

// ~scheduler: r still holds requests in a kernel's hands (in_flight()): the
// driver closes what it can, and r is never freed.
void abandon(runner& r) noexcept;

} // namespace drv
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_DRIVER_HPP
