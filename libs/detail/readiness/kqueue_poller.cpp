// libs/detail/readiness/kqueue_poller.cpp: kqueue for the readiness driver
// (the BSDs and macOS; Linux through libkqueue).
#include "detail/readiness/driver.hpp"

#if defined(ZOKIO_HAS_KQUEUE)

#include <zokio/detail/sched/scheduler.hpp>

#include "detail/throw_errno.hpp"

#include <cerrno>
#include <ctime>
#include <poll.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace readiness {
namespace {

// udata is a pointer on most systems and an intptr_t on NetBSD: the tag
// travels through it either way.
template <typename T>
void set_change(struct ::kevent& ev, std::uintptr_t ident, short filter, unsigned short flags,
    unsigned fflags, std::uint64_t tag)
{
  EV_SET(&ev, ident, filter, flags, fflags, 0, 0);
  ev.udata = (T)(std::uintptr_t)tag;
}

std::uint64_t tag_of(const struct ::kevent& ev) noexcept
{
  return static_cast<std::uint64_t>((std::uintptr_t)ev.udata);
}

} // namespace

#if defined(__linux__)
// libkqueue's (weak: a libkqueue without it is linked too).
extern "C" void libkqueue_drain_pending_close(void) __attribute__((weak));
#endif

void kqueue_poller::before_fork() noexcept
{
#if defined(__linux__)
  if (libkqueue_drain_pending_close)
    libkqueue_drain_pending_close();
#endif
}

kqueue_poller::kqueue_poller(const driver_sizes& sizes)
{
  raw_size_ = static_cast<int>(sizes.sq_entries ? sizes.sq_entries : 256);
  raw_.reset(new struct ::kevent[static_cast<std::size_t>(raw_size_)]);
  open();
}

void kqueue_poller::reopen_after_fork()
{
  kq_ = -1;
  open();
}

void kqueue_poller::open()
{
  kq_ = ::kqueue();
  if (kq_ < 0)
    throw_errno(errno, "kqueue");
  // The wake-up: a user event, cleared when reported (EV_CLEAR), so one
  // trigger ends one wait and a trigger while nobody waits is not lost.
  struct ::kevent ev;
  set_change<decltype(ev.udata)>(ev, wake_ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0);
  if (::kevent(kq_, &ev, 1, nullptr, 0, nullptr) < 0)
  {
    int err = errno;
    ::close(kq_);
    kq_ = -1;
    throw_errno(err, "kevent (EVFILT_USER)");
  }
}

kqueue_poller::~kqueue_poller()
{
  if (kq_ >= 0)
    ::close(kq_);
}

int kqueue_poller::add(int fd, std::uint64_t tag) noexcept
{
  // Both filters edge-triggered (EV_CLEAR). Any earlier registration of the
  // number goes first: a descriptor closed without EV_DELETE may leave its
  // note behind (libkqueue does), and the number, reused, must be watched
  // for its new file. EV_RECEIPT: each change reports its own error without
  // dequeuing any pending event.
  struct ::kevent ch[2], res[2];
  using udata_t = decltype(ch[0].udata);
  set_change<udata_t>(ch[0], static_cast<std::uintptr_t>(fd), EVFILT_READ,
      EV_ADD | EV_CLEAR | EV_RECEIPT, 0, tag);
  set_change<udata_t>(ch[1], static_cast<std::uintptr_t>(fd), EVFILT_WRITE,
      EV_ADD | EV_CLEAR | EV_RECEIPT, 0, tag);
  ::timespec zero{0, 0};
  int n = ::kevent(kq_, ch, 2, res, 2, &zero);
  if (n < 0)
    return errno;
  for (int i = 0; i < n; ++i)
  {
    // A failed EV_ADD of the read filter is the registration's failure (a
    // descriptor kqueue cannot watch); the write filter may be refused for
    // a listening socket, which is never written; deletions of notes that
    // were not there fail with ENOENT, as expected.
    if ((res[i].flags & EV_ERROR) && res[i].data != 0 && res[i].filter == EVFILT_READ
        && res[i].data != ENOENT)
      return static_cast<int>(res[i].data);
  }
  return 0;
}

void kqueue_poller::remove(int fd) noexcept
{
  struct ::kevent ch[2], res[2];
  using udata_t = decltype(ch[0].udata);
  set_change<udata_t>(ch[0], static_cast<std::uintptr_t>(fd), EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0);
  set_change<udata_t>(ch[1], static_cast<std::uintptr_t>(fd), EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0);
  ::timespec zero{0, 0};
  (void)::kevent(kq_, ch, 2, res, 2, &zero);  // ENOENT: never registered here
}

void kqueue_poller::wake() noexcept
{
  struct ::kevent ev;
  set_change<decltype(ev.udata)>(ev, wake_ident, EVFILT_USER, 0, NOTE_TRIGGER, 0);
  ::kevent(kq_, &ev, 1, nullptr, 0, nullptr);
}

int kqueue_poller::wait(event* out, int max, std::int64_t timeout_ns,
    std::uint64_t& syscalls) noexcept
{
  if (max > raw_size_)
    max = raw_size_;
  ::timespec ts{0, 0};
  ::timespec* tsp = &ts;
  if (timeout_ns == scheduler::no_deadline)
    tsp = nullptr;
  else
  {
    ts.tv_sec = static_cast<std::time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
  }
  int n = ::kevent(kq_, nullptr, 0, raw_.get(), max, tsp);
  ++syscalls;
  if (n < 0)
    return -errno;
  full_ = n == max;
  int k = 0;
  for (int i = 0; i < n; ++i)
  {
    const struct ::kevent& e = raw_[i];
    if (e.filter == EVFILT_USER)
    {
      woke_ = true;
      continue;
    }
    event& o = out[k++];
    o.tag = tag_of(e);
    o.readable = o.writable = o.priority = o.hangup = false;
    o.error = 0;
    unsigned rev = 0;
    if (e.flags & EV_ERROR)
    {
      o.readable = o.writable = o.hangup = true;
      o.error = static_cast<int>(e.data);
      rev = POLLERR;
    }
    else if (e.filter == EVFILT_READ)
    {
      o.readable = true;
      rev = POLLIN;
    }
    else if (e.filter == EVFILT_WRITE)
    {
      o.writable = true;
      rev = POLLOUT;
    }
    if (e.flags & EV_EOF)
    {
      // The peer closed (or an error, in fflags): every direction learns it.
      o.readable = o.writable = o.hangup = true;
      rev |= POLLHUP;
      if (e.fflags != 0)
      {
        rev |= POLLERR;
        o.error = static_cast<int>(e.fflags);
      }
    }
    o.revents = rev;
  }
  return k;
}

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_HAS_KQUEUE
