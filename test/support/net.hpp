// test/support/net.hpp: loopback connections for the networking suites.
#ifndef ZOKIO_TEST_SUPPORT_NET_HPP
#define ZOKIO_TEST_SUPPORT_NET_HPP

#include <zokio/ip/tcp.hpp>

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <filesystem>
#include <utility>

#include <sys/resource.h>

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

// The descriptors the process has open (entries of /proc/self/fd, counting
// the one that lists them).
inline std::size_t open_fds()
{
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_NET_HPP
