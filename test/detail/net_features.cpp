// Tests of the probed io_uring networking features (net_features.hpp) and of
// the acceptor's fallback to single accepts when the kernel refuses
// multishot accept (accept_engine.hpp). The other suites take their
// "feature absent" branch silently; these fail when a probe misses a
// feature the running kernel has. ctest runs the suite again with
// ZOKIO_NET_FEATURES=none (detail_net_features_none).
#include <zokio/detail/uring/net_features.hpp>

#define BOOST_TEST_MODULE detail_net_features
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>

#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/detail/uring/accept_engine.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <vector>

#include <sys/utsname.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;
using zokio::ip::tcp;
using zokio::detail::accept_engine;

namespace {

// The running kernel's release, major and minor ("6.8.0-45-generic": 6, 8).
struct kernel_release
{
  int major = 0;
  int minor = 0;
  bool parsed = false;
  const char* text = "";

  bool at_least(int maj, int min) const noexcept
  {
    return major > maj || (major == maj && minor >= min);
  }
};

kernel_release running_kernel()
{
  static ::utsname u;
  kernel_release k;
  if (::uname(&u) != 0)
    return k;
  k.text = u.release;
  k.parsed = std::sscanf(u.release, "%d.%d", &k.major, &k.minor) == 2;
  return k;
}

bool features_forced_off()
{
  const char* env = std::getenv("ZOKIO_NET_FEATURES");
  return env && std::strcmp(env, "none") == 0;
}

// Simulates the kernel refusing multishot accept for the lifetime of the
// object (accept_engine::test_refuse); forgets the refusal afterwards.
struct simulated_refusal
{
  simulated_refusal() { accept_engine::test_refuse(true); }
  ~simulated_refusal() { accept_engine::test_refuse(false); }
};

} // namespace

//------------------------------------------------------------------------------
// Detection.

BOOST_AUTO_TEST_CASE(probe_leaves_no_descriptor_open)
{
  // The first case: features() is probed here (once per process). The
  // multishot accept probe accepts a connection on a private ring; nothing
  // it opened may stay open.
  const std::size_t before = zokio_test::open_fds();
  const auto t0 = std::chrono::steady_clock::now();
  (void)zokio::detail::uring::features();
  BOOST_TEST_MESSAGE("features probed in " << zokio_test::ms_since(t0) << " ms");
  BOOST_TEST(zokio_test::open_fds() == before);
}

BOOST_AUTO_TEST_CASE(features_of_the_running_kernel_are_detected)
{
  const auto& f = zokio::detail::uring::features();
  if (features_forced_off())
  {
    BOOST_TEST_MESSAGE("ZOKIO_NET_FEATURES=none: detection not checked "
        "(features_are_off_with_ZOKIO_NET_FEATURES_none checks the switch)");
    return;
  }
  const kernel_release k = running_kernel();
  BOOST_TEST_REQUIRE(k.parsed, "cannot parse the kernel release \"" << k.text << "\"");
  if (!k.at_least(5, 19))
  {
    BOOST_TEST_MESSAGE("kernel " << k.text << " is older than 5.19: "
        "feature detection not checked (skipped)");
    return;
  }
  // Linux 5.19.
  BOOST_TEST(f.recv_poll_first, "IORING_RECVSEND_POLL_FIRST not detected on " << k.text);
  BOOST_TEST(f.multishot_accept, "IORING_ACCEPT_MULTISHOT not detected on " << k.text);
  BOOST_TEST(f.buffer_ring, "IORING_REGISTER_PBUF_RING not detected on " << k.text);
  BOOST_TEST(f.cancel_fd_all, "IORING_ASYNC_CANCEL_FD|ALL not detected on " << k.text);
  if (!k.at_least(6, 0))
  {
    BOOST_TEST_MESSAGE("kernel " << k.text << " is older than 6.0: "
        "multishot receive and SEND_ZC not checked (skipped)");
    return;
  }
  // Linux 6.0.
  BOOST_TEST(f.multishot_recv, "IORING_RECV_MULTISHOT not detected on " << k.text);
  BOOST_TEST(f.send_zc, "IORING_OP_SEND_ZC not detected on " << k.text);
}

BOOST_AUTO_TEST_CASE(features_are_off_with_ZOKIO_NET_FEATURES_none)
{
  // features() is computed once per process: the switch is tested by the
  // run with the variable set (ctest: detail_net_features_none).
  if (!features_forced_off())
  {
    BOOST_TEST_MESSAGE("ZOKIO_NET_FEATURES is not \"none\": checked by detail_net_features_none");
    return;
  }
  const auto& f = zokio::detail::uring::features();
  BOOST_TEST(!f.recv_poll_first);
  BOOST_TEST(!f.multishot_accept);
  BOOST_TEST(!f.buffer_ring);
  BOOST_TEST(!f.multishot_recv);
  BOOST_TEST(!f.send_zc);
  BOOST_TEST(!f.cancel_fd_all);
  BOOST_TEST(!accept_engine::enabled());
}

//------------------------------------------------------------------------------
// Multishot accept refused by the kernel: the acceptor falls back to single
// accepts, and the user never sees the refusal. The refusal is simulated on
// real CQEs (accept_engine::test_refuse: the request carries an accept flag
// the kernel rejects with EINVAL, as a kernel without multishot accept
// rejects the multishot flag).

BOOST_AUTO_TEST_CASE(accept_on_a_socket_that_does_not_listen_still_fails)
{
  // EINVAL from a socket that is not listening is the accept's own error,
  // not a refusal of multishot accept: the user gets it, the engine goes on.
  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx);
  acceptor.open(tcp::v4());
  acceptor.bind(zokio_test::loopback_v4());
  error_code got;
  int calls = 0;
  acceptor.async_accept([&](error_code ec, tcp::socket) {
    got = ec;
    ++calls;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(calls == 1);
  BOOST_TEST(got == asio::error::invalid_argument, got.message());
  BOOST_TEST(!accept_engine::refused());
}

BOOST_AUTO_TEST_CASE(refused_multishot_accept_falls_back_to_single_accepts)
{
  if (!accept_engine::enabled())
  {
    BOOST_TEST_MESSAGE("multishot accept is off (ZOKIO_NET_FEATURES=none, "
        "ZOKIO_MULTISHOT_ACCEPT=0 or an old kernel): no refusal to fall back from (skipped)");
    return;
  }
  simulated_refusal refusal;
  BOOST_TEST_REQUIRE(!accept_engine::refused());

  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  constexpr int parked = 3;  // waiting in the engine when the refusal comes
  constexpr int n = 20;
  std::vector<tcp::socket> clients;
  std::vector<tcp::endpoint> client_eps;
  for (int i = 0; i < n; ++i)
  {
    clients.emplace_back(ctx);
    clients.back().connect(acceptor.local_endpoint());
    client_eps.push_back(clients.back().local_endpoint());
  }

  std::vector<tcp::socket> accepted;
  std::vector<error_code> errors;
  int started = 0;
  std::function<void(error_code, tcp::socket)> on_accept = [&](error_code ec, tcp::socket s) {
    if (ec)
      errors.push_back(ec);
    else
      accepted.push_back(std::move(s));
    if (started < n)
    {
      ++started;
      acceptor.async_accept(on_accept);
    }
  };
  // Started outside run(): the engine parks them and posts its request; the
  // kernel refuses the request once run() submits it, and the three parked
  // accepts are handed back as single accepts. One wants the peer's
  // address, which the single accept's kernel request then provides.
  tcp::endpoint peer;
  error_code peer_ec;
  tcp::socket peer_socket(ctx);
  acceptor.async_accept(peer, [&](error_code ec, tcp::socket s) {
    peer_ec = ec;
    peer_socket = std::move(s);
    if (started < n)
    {
      ++started;
      acceptor.async_accept(on_accept);
    }
  });
  started = 1;
  for (; started < parked; ++started)
    acceptor.async_accept(on_accept);

  const auto before = ctx.statistics().submissions;
  zokio_test::run_bounded(ctx);
  const auto submitted = ctx.statistics().submissions - before;

  BOOST_TEST(accept_engine::refused());
  BOOST_TEST(!peer_ec, peer_ec.message());
  for (auto& ec : errors)
    BOOST_TEST(!ec, "an accept failed: " << ec.message());
  BOOST_TEST(errors.empty());
  // Every connection accepted once: n - 1 here and peer_socket.
  BOOST_TEST(accepted.size() == std::size_t(n - 1));
  BOOST_REQUIRE(peer_socket.is_open());
  BOOST_TEST(peer_socket.remote_endpoint() == peer);
  BOOST_TEST((std::find(client_eps.begin(), client_eps.end(), peer) != client_eps.end()));
  // One request per accept after the refusal.
  BOOST_TEST(submitted >= std::uint64_t(n));
  // Each accepted connection works.
  accepted.push_back(std::move(peer_socket));
  for (auto& s : accepted)
    BOOST_TEST(s.send(asio::buffer("k", 1)) == 1u);
  for (auto& c : clients)
  {
    char ch = 0;
    BOOST_TEST(c.receive(asio::buffer(&ch, 1)) == 1u);
  }
}

BOOST_AUTO_TEST_CASE(refused_multishot_accept_falls_back_on_a_thread_pool)
{
  // As above with two workers: the refusal is seen on the ring of the worker
  // that armed the request; the handed-back accepts are submitted by
  // whichever worker takes them, and complete on either.
  if (!accept_engine::enabled())
  {
    BOOST_TEST_MESSAGE("multishot accept is off: no refusal to fall back from (skipped)");
    return;
  }
  simulated_refusal refusal;
  BOOST_TEST_REQUIRE(!accept_engine::refused());

  constexpr int parked = 4;
  constexpr int n = 40;
  std::atomic<int> accepted{0}, started{parked};
  std::mutex m;
  std::vector<error_code> errors;
  std::vector<tcp::socket> sockets;
  std::promise<void> all_accepted;
  {
    zokio::thread_pool pool(2);
    tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
    std::function<void(error_code, tcp::socket)> on_accept = [&](error_code ec, tcp::socket s) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (ec)
          errors.push_back(ec);
        else
          sockets.push_back(std::move(s));
      }
      if (ec)
        return;
      if (started.fetch_add(1) < n)
        acceptor.async_accept(on_accept);
      if (++accepted == n)
        all_accepted.set_value();
    };
    for (int i = 0; i < parked; ++i)
      acceptor.async_accept(on_accept);
    std::vector<tcp::socket> clients;
    for (int i = 0; i < n; ++i)
    {
      clients.emplace_back(pool);
      clients.back().connect(acceptor.local_endpoint());
    }
    auto done = all_accepted.get_future();
    const bool all = done.wait_for(20s) == std::future_status::ready;
    BOOST_TEST(all, "not every connection was accepted");
    acceptor.close();
    if (all)
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto& s : sockets)
        BOOST_TEST(s.send(asio::buffer("k", 1)) == 1u);
      sockets.clear();
      for (auto& c : clients)
      {
        char ch = 0;
        BOOST_TEST(c.receive(asio::buffer(&ch, 1)) == 1u);
      }
    }
    clients.clear();
    pool.join();
    sockets.clear();  // before the pool goes (no handler runs any more)
  }
  BOOST_TEST(accept_engine::refused());
  BOOST_TEST(accepted.load() == n);
  // Exactly n accepts were started, so none was pending at close().
  for (auto& ec : errors)
    BOOST_TEST(!ec, "an accept failed: " << ec.message());
  BOOST_TEST(errors.empty());
}
