// libs/detail/readiness/epoll_poller.cpp: epoll for the readiness driver.
#include "detail/readiness/driver.hpp"

#if defined(ZOKIO_HAS_EPOLL)

#include <zokio/detail/sched/scheduler.hpp>

#include "detail/throw_errno.hpp"

#include <cerrno>
#include <ctime>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace readiness {
epoll_poller::epoll_poller(const driver_sizes& sizes)
{
  raw_size_ = static_cast<int>(sizes.sq_entries ? sizes.sq_entries : 256);
  raw_.reset(new ::epoll_event[static_cast<std::size_t>(raw_size_)]);
  open();
}

void epoll_poller::open()
{
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0)
    throw_errno(errno, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
  {
    int err = errno;
    ::close(epfd_);
    epfd_ = -1;
    throw_errno(err, "eventfd");
  }
  // Level-triggered: reported until drained, so a wake-up cannot be lost
  // between two waits.
  ::epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_tag;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0)
  {
    int err = errno;
    ::close(wake_fd_);
    ::close(epfd_);
    wake_fd_ = epfd_ = -1;
    throw_errno(err, "epoll_ctl (wake-up eventfd)");
  }
}

void epoll_poller::close_all() noexcept
{
  if (timer_fd_ >= 0)
    ::close(timer_fd_);
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
  if (epfd_ >= 0)
    ::close(epfd_);
  timer_fd_ = wake_fd_ = epfd_ = -1;
  armed_deadline_ = 0;
}

epoll_poller::~epoll_poller()
{
  close_all();
}

void epoll_poller::reopen_after_fork()
{
  close_all();
  open();
}

int epoll_poller::add(int fd, std::uint64_t tag) noexcept
{
  ::epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0)
    return 0;
  // Still registered under an older generation (a released descriptor
  // assigned again): take the new tag.
  if (errno == EEXIST && ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0)
    return 0;
  return errno;
}

void epoll_poller::wake() noexcept
{
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

int epoll_poller::wait(event* out, int max, std::int64_t timeout_ns,
    std::uint64_t& syscalls) noexcept
{
  if (max > raw_size_)
    max = raw_size_;
  int ms = timeout_ns == 0 ? 0 : -1;
  if (timeout_ns != 0 && timeout_ns != scheduler::no_deadline)
  {
    // A timeout is a timerfd in the set, armed at the absolute deadline:
    // epoll_wait's own timeout is in milliseconds, and epoll_pwait2's (and
    // any poll-family timeout) is stretched by the thread's timer slack
    // (50 us by default), where a timerfd fires on time, as Asio's reactor's
    // does. The timerfd is re-armed only when the deadline moves earlier or
    // has passed: a later deadline (a timer cancelled) at worst wakes the
    // thread once early, and it sleeps again.
    ::timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t deadline =
        std::int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec + timeout_ns;
    const std::int64_t now_ns = std::int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
    if (timer_fd_ < 0)
    {
      timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
      ++syscalls;
      if (timer_fd_ >= 0)
      {
        ::epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = timer_tag;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0)
        {
          ::close(timer_fd_);
          timer_fd_ = -1;
        }
        ++syscalls;
      }
    }
    if (timer_fd_ >= 0)
    {
      if (armed_deadline_ <= now_ns || deadline < armed_deadline_)
      {
        ::itimerspec its{};
        its.it_value.tv_sec = static_cast<std::time_t>(deadline / 1'000'000'000);
        its.it_value.tv_nsec = static_cast<long>(deadline % 1'000'000'000);
        ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
        ++syscalls;
        armed_deadline_ = deadline;
      }
    }
    else
    {
      // No timerfd (descriptors exhausted): milliseconds, rounded up.
      std::int64_t m = (timeout_ns + 999'999) / 1'000'000;
      ms = m > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(m);
    }
  }
  int n = ::epoll_wait(epfd_, raw_.get(), max, ms);
  ++syscalls;
  if (n < 0)
    return -errno;
  full_ = n == max;

  int k = 0;
  for (int i = 0; i < n; ++i)
  {
    const ::epoll_event& e = raw_[i];
    if (e.data.u64 == wake_tag)
    {
      std::uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof(v));
      ++syscalls;
      woke_ = true;
      continue;
    }
    if (e.data.u64 == timer_tag)
    {
      std::uint64_t v;
      (void)!::read(timer_fd_, &v, sizeof(v));
      ++syscalls;
      armed_deadline_ = 0;  // fired: the next timeout arms it again
      continue;
    }
    event& o = out[k++];
    o.tag = e.data.u64;
    const unsigned err = e.events & (EPOLLERR | EPOLLHUP);
    o.readable = (e.events & (EPOLLIN | EPOLLRDHUP)) || err;
    o.writable = (e.events & EPOLLOUT) || err;
    o.priority = (e.events & EPOLLPRI) || err;
    o.hangup = (e.events & EPOLLRDHUP) || err;
    unsigned rev = 0;
    if (e.events & (EPOLLIN | EPOLLRDHUP))
      rev |= POLLIN;
    if (e.events & EPOLLOUT)
      rev |= POLLOUT;
    if (e.events & EPOLLPRI)
      rev |= POLLPRI;
    if (e.events & EPOLLERR)
      rev |= POLLERR;
    if (e.events & EPOLLHUP)
      rev |= POLLHUP;
    o.revents = rev;
    o.error = 0;  // still in the socket (SO_ERROR)
  }
  return k;
}

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_HAS_EPOLL
