// test/support/net.hpp: loopback connections for the networking suites.
#ifndef ZOKIO_TEST_SUPPORT_NET_HPP
#define ZOKIO_TEST_SUPPORT_NET_HPP

#include <zokio/ip/tcp.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <support/run.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zokio_test {

inline boost::asio::ip::tcp::endpoint loopback_v4(unsigned short port = 0)
{
  return {boost::asio::ip::address_v4::loopback(), port};
}

// Two connected TCP sockets on 127.0.0.1, made with the blocking calls.
template <typename Socket = zokio::ip::tcp::socket, typename Context>
std::pair<Socket, Socket> connected_pair(Context& ctx)
{
  zokio::ip::tcp::acceptor acceptor(ctx, loopback_v4());
  Socket a(ctx), b(ctx);
  a.connect(acceptor.local_endpoint());
  acceptor.accept(b);
  return {std::move(a), std::move(b)};
}

// Where a cancellation reaches a socket operation, for the cancellation
// matrices (printed as 0, 1, 2).
enum class cancel_stage { not_on_a_ring, queued, in_kernel };
inline constexpr cancel_stage cancel_stages[] = {
    cancel_stage::not_on_a_ring, cancel_stage::queued, cancel_stage::in_kernel};

// Starts an operation (start) and cancels it (cancel) at the given stage,
// then runs ctx until it has no work:
//   not_on_a_ring: both on this thread, which does not run ctx: the
//     operation is handed over to a runner and cancelled before it is on a ring;
//   queued: both in one handler, before the run loop submits the SQE;
//   in_kernel: the cancel 5 ms after the start, the operation waiting in the kernel.
template <typename Start, typename Cancel>
void start_and_cancel(zokio::io_context& ctx, cancel_stage when, Start start, Cancel cancel)
{
  zokio::steady_timer delay(ctx, std::chrono::milliseconds(5));
  switch (when)
  {
  case cancel_stage::not_on_a_ring:
    start();
    cancel();
    break;
  case cancel_stage::queued:
    boost::asio::post(ctx, [&] {
      start();
      cancel();
    });
    break;
  case cancel_stage::in_kernel:
    boost::asio::post(ctx, [&] { start(); });
    delay.async_wait([&](boost::system::error_code) { cancel(); });
    break;
  }
  run_bounded(ctx);
}

// A loopback port nobody listens on (bound, then closed).
inline boost::asio::ip::tcp::endpoint refusing_endpoint(zokio::io_context& ctx)
{
  zokio::ip::tcp::acceptor acceptor(ctx, loopback_v4());
  auto ep = acceptor.local_endpoint();
  acceptor.close();
  return ep;
}

// Raises the soft descriptor limit to at least n (up to the hard limit);
// returns the limit now in force.
inline rlim_t raise_fd_limit(rlim_t n)
{
  ::rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < n)
  {
    rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// Preconditions for test case decorators
// (BOOST_AUTO_TEST_CASE(name, *boost::unit_test::precondition(...))): a case
// whose precondition fails is reported as skipped, with the reason.

// An IPv6 socket can be bound to ::1.
inline boost::test_tools::assertion_result ipv6_loopback(boost::unit_test::test_unit_id)
{
  int err = 0;
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    err = errno;
  else
  {
    ::sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    if (::bind(fd, reinterpret_cast<const ::sockaddr*>(&sa), sizeof sa) != 0)
      err = errno;
    ::close(fd);
  }
  boost::test_tools::assertion_result r(err == 0);
  if (err)
    r.message() << "no IPv6 loopback (" << std::strerror(err) << ")";
  return r;
}

// RLIMIT_NOFILE is (or can be raised to) at least n.
struct fd_limit_at_least
{
  rlim_t n;

  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const;
};

// The descriptors the process has open (entries of /proc/self/fd, counting
// the one that lists them).
inline std::size_t open_fds()
{
  // On the kqueue backend (libkqueue on Linux), libkqueue keeps descriptors
  // of its own (a monitoring thread's socket pair, and each kqueue's epoll,
  // eventfds and pipe, freed asynchronously after the kqueue is closed):
  // only internet sockets are counted there, which are what the tests open
  // and zokio must close.
  const char* b = std::getenv("ZOKIO_BACKEND");
  const bool inet_only = b && std::string(b) == "kqueue";
  std::size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
  {
    if (inet_only)
    {
      int fd = -1, domain = -1;
      try
      {
        fd = std::stoi(e.path().filename().string());
      }
      catch (...)
      {
        continue;
      }
      ::socklen_t len = sizeof(domain);
      if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0
          || (domain != AF_INET && domain != AF_INET6))
        continue;
    }
    ++n;
  }
  return n;
}

inline boost::test_tools::assertion_result fd_limit_at_least::operator()(
    boost::unit_test::test_unit_id) const
{
  const rlim_t got = raise_fd_limit(n);
  boost::test_tools::assertion_result r(got >= n);
  if (got < n)
    r.message() << "RLIMIT_NOFILE cannot be raised to " << n << " (" << got << ")";
  return r;
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_NET_HPP
