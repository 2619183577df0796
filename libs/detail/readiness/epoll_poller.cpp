// libs/detail/readiness/epoll_poller.cpp: epoll for the readiness driver.
#include "detail/readiness/driver.hpp"

#if defined(ZOKIO_HAS_EPOLL)

#include <zokio/detail/sched/scheduler.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
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
namespace {

[[noreturn]] void throw_errno(int err, const char* what)
{
  throw boost::system::system_error(
      boost::system::error_code(err, boost::asio::error::get_system_category()), what);
}

// Whether epoll_pwait2 (linux 5.11) works: 1 yes, 0 no, -1 not tried yet.
// Process-wide; relaxed: every value read is safe (a thread that reads -1
// tries, and may find ENOSYS itself).
std::atomic<int> have_pwait2{-1};

} // namespace

epoll_poller::epoll_poller(const driver_sizes& sizes)
{
  raw_size_ = static_cast<int>(sizes.sq_entries ? sizes.sq_entries : 256);
  raw_.reset(new ::epoll_event[static_cast<std::size_t>(raw_size_)]);
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0)
    throw_errno(errno, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
  {
    int err = errno;
    ::close(epfd_);
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
    throw_errno(err, "epoll_ctl (wake-up eventfd)");
  }
}

epoll_poller::~epoll_poller()
{
  if (timer_fd_ >= 0)
    ::close(timer_fd_);
  ::close(wake_fd_);
  ::close(epfd_);
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
  int n;
  if (timeout_ns == 0 || timeout_ns == scheduler::no_deadline)
  {
    n = ::epoll_wait(epfd_, raw_.get(), max, timeout_ns == 0 ? 0 : -1);
    ++syscalls;
  }
  else
  {
    n = -1;
    errno = ENOSYS;
    if (have_pwait2.load(std::memory_order_relaxed) != 0)
    {
      ::timespec ts{static_cast<std::time_t>(timeout_ns / 1'000'000'000),
          static_cast<long>(timeout_ns % 1'000'000'000)};
      n = ::epoll_pwait2(epfd_, raw_.get(), max, &ts, nullptr);
      ++syscalls;
      if (n >= 0 || errno != ENOSYS)
        have_pwait2.store(1, std::memory_order_relaxed);
      else
        have_pwait2.store(0, std::memory_order_relaxed);
    }
    if (n < 0 && errno == ENOSYS)
    {
      // Before 5.11: a timerfd in the set carries the sub-millisecond
      // timeout (epoll_wait's is in milliseconds).
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
      int ms = -1;
      if (timer_fd_ >= 0)
      {
        ::itimerspec its{};
        its.it_value.tv_sec = static_cast<std::time_t>(timeout_ns / 1'000'000'000);
        its.it_value.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
        ::timerfd_settime(timer_fd_, 0, &its, nullptr);
        ++syscalls;
      }
      else
      {
        // No timerfd either: milliseconds, rounded up.
        std::int64_t m = (timeout_ns + 999'999) / 1'000'000;
        ms = m > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(m);
      }
      n = ::epoll_wait(epfd_, raw_.get(), max, ms);
      ++syscalls;
    }
  }
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
      continue;
    }
    event& o = out[k++];
    o.tag = e.data.u64;
    const unsigned err = e.events & (EPOLLERR | EPOLLHUP);
    o.readable = (e.events & (EPOLLIN | EPOLLRDHUP)) || err;
    o.writable = (e.events & EPOLLOUT) || err;
    o.priority = (e.events & EPOLLPRI) || err;
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
