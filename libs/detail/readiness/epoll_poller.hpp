// libs/detail/readiness/epoll_poller.hpp: epoll for the readiness driver
// (driver.hpp), Linux.
#ifndef ZOKIO_LIBS_DETAIL_READINESS_EPOLL_POLLER_HPP
#define ZOKIO_LIBS_DETAIL_READINESS_EPOLL_POLLER_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/driver_sizes.hpp>

#include "detail/readiness/wait_outcome.hpp"

#if defined(ZOKIO_HAS_EPOLL)

#include <cstdint>
#include <memory>

struct epoll_event;

namespace zokio {
namespace detail {
namespace readiness {

struct event;

// One epoll instance, its wake-up eventfd (registered level-triggered, drained
// when reported) and a timerfd for timeouts (created on the first one):
// nanosecond deadlines, without the timer slack that stretches epoll_pwait2's.
class epoll_poller : public wait_outcome
{
public:
  // Events that do not fit in one wait's list stay for the next.
  static constexpr bool drops_when_full = false;

  // A peer's FIN is reported with the data it follows (EPOLLRDHUP is read
  // when the event is), so a stream receive shorter than its buffer, with no
  // hang-up reported, leaves the socket empty.
  static constexpr bool short_read_means_empty = true;

  explicit epoll_poller(const driver_sizes& sizes);
  ~epoll_poller();

  epoll_poller(const epoll_poller&) = delete;
  epoll_poller& operator=(const epoll_poller&) = delete;

  // A child after fork(): closes the child's copies of the instance, the
  // eventfd and the timerfd (the parent's stay as they are) and makes new
  // ones. Throws system_error.
  void reopen_after_fork();

  int add(int fd, std::uint64_t tag) noexcept;
  int wait(event* out, int max, std::int64_t timeout_ns, std::uint64_t& syscalls) noexcept;
  void wake() noexcept;

private:
  void open();
  void close_all() noexcept;

  static constexpr std::uint64_t wake_tag = ~std::uint64_t(0);
  static constexpr std::uint64_t timer_tag = ~std::uint64_t(0) - 1;

  int epfd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;    // created on the first timeout
  std::int64_t armed_deadline_ = 0; // CLOCK_MONOTONIC ns the timerfd fires at (0: not armed)
  std::unique_ptr<::epoll_event[]> raw_;
  int raw_size_ = 0;
};

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_HAS_EPOLL
#endif // ZOKIO_LIBS_DETAIL_READINESS_EPOLL_POLLER_HPP
