// libs/detail/readiness/kqueue_poller.hpp: kqueue for the readiness driver
// (driver.hpp): the BSDs and macOS, and Linux through libkqueue.
#ifndef ZOKIO_LIBS_DETAIL_READINESS_KQUEUE_POLLER_HPP
#define ZOKIO_LIBS_DETAIL_READINESS_KQUEUE_POLLER_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/driver_sizes.hpp>

#include "detail/readiness/wait_outcome.hpp"

#if defined(ZOKIO_HAS_KQUEUE)

#include <cstdint>
#include <memory>

struct kevent;

namespace zokio {
namespace detail {
namespace readiness {

struct event;

// One kqueue; wake-ups are an EVFILT_USER event (NOTE_TRIGGER), timeouts the
// kevent timeout (nanoseconds).
class kqueue_poller : public wait_outcome
{
public:
  // libkqueue (Linux) copies out the two filters of one descriptor from one
  // epoll event, and stops when the caller's list is full: the events it
  // could not copy are gone (edge-triggered). A full list therefore makes
  // the driver try every waiting operation again. The kernel's kqueue keeps
  // what did not fit for the next call.
#if defined(__linux__)
  static constexpr bool drops_when_full = true;
#else
  static constexpr bool drops_when_full = false;
#endif

  // libkqueue does not set EV_EOF on a read event that also carries data, so
  // a short receive may leave a FIN behind: only EAGAIN says "empty" here.
  static constexpr bool short_read_means_empty = false;

  explicit kqueue_poller(const driver_sizes& sizes);
  ~kqueue_poller();

  kqueue_poller(const kqueue_poller&) = delete;
  kqueue_poller& operator=(const kqueue_poller&) = delete;

  // A child after fork(): a kqueue is not inherited (BSD; libkqueue's fork
  // handler does the same on Linux), so the number is not the child's to
  // close: it is forgotten and a new kqueue made. Throws system_error.
  void reopen_after_fork();

  // Before fork() (notify_fork(fork_prepare)). Linux's libkqueue frees a
  // closed kqueue's descriptors from a background thread, and its fork
  // handler closes, in the child, the numbers of kqueues closed but not
  // yet freed, which by then may name other descriptors (a pipe made for
  // the child). Its pending frees are made now; nothing on BSD.
  static void before_fork() noexcept;

  int add(int fd, std::uint64_t tag) noexcept;

  // Drops fd's notes (both filters), before its socket closes it: libkqueue
  // keeps a closed descriptor's state otherwise (its BUGS.md). Any thread.
  void remove(int fd) noexcept;
  int wait(event* out, int max, std::int64_t timeout_ns, std::uint64_t& syscalls) noexcept;
  void wake() noexcept;

private:
  void open();

  static constexpr std::uintptr_t wake_ident = 0x7a6f6b69;  // EVFILT_USER ident

  int kq_ = -1;
  std::unique_ptr<struct ::kevent[]> raw_;
  int raw_size_ = 0;
};

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_HAS_KQUEUE
#endif // ZOKIO_LIBS_DETAIL_READINESS_KQUEUE_POLLER_HPP
