// test/soak.cpp: a long echo run with every byte checked (run by test/soak,
// not by ctest).
//
//   test_soak [--connections N] [--seconds S] [--context io_context|pool]
//
// A zokio echo server (on a zokio::io_context run by one thread, or on a
// zokio::thread_pool of 2 workers) and, on a zokio::io_context of its own
// thread, N clients (default 1,000) that send messages of 1 to 4,096 bytes
// whose content is a function of the connection, the message's number and
// the byte's position, and check every byte that comes back. Runs for S
// seconds (default 600), on the backend ZOKIO_BACKEND names (the process's
// choice otherwise). Prints messages, bytes, errors, RSS and descriptors at
// the start (all connections up) and at the end, and exits 1 on any error,
// lost or corrupted byte, a descriptor more at the end than at the start, or
// RSS grown by more than max(8 MiB, 25 %) (allocator caches settle in the
// first minute; a leak of one block per message would be gigabytes).
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <support/descriptors.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace asio = boost::asio;
using zokio::ip::tcp;
using boost::system::error_code;

namespace {

struct counters
{
  std::atomic<long> messages{0};
  std::atomic<long> bytes{0};
  std::atomic<long> errors{0};     // a failed operation before the end
  std::atomic<long> corrupted{0};  // a message that came back different
  std::atomic<long> connected{0};
  std::atomic<long> finished{0};
};

long rss_kib()
{
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r"))
  {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
      pages_resident = 0;
    std::fclose(f);
  }
  return pages_resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// The byte at position i of message m of connection c.
inline char pattern(int c, long m, std::size_t i)
{
  return static_cast<char>((c * 131 + m * 31 + static_cast<long>(i) * 7) ^ (i >> 8));
}

// The length of message m of connection c: 1 to 4,096 bytes.
inline std::size_t length_of(int c, long m)
{
  return 1 + static_cast<std::size_t>((c * 2654435761u + static_cast<unsigned long>(m) * 40503u) % 4096);
}

// Server: each session echoes until the peer closes.
asio::awaitable<void> session(tcp::socket s, counters& k)
{
  std::vector<char> buf(8192);
  for (;;)
  {
    error_code ec;
    std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
    {
      if (ec != asio::error::eof && ec != asio::error::connection_reset)
        k.errors.fetch_add(1);
      co_return;
    }
    co_await asio::async_write(s, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
    {
      k.errors.fetch_add(1);
      co_return;
    }
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& a, counters& k)
{
  for (;;)
  {
    error_code ec;
    tcp::socket s = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !a.is_open())
      co_return;
    if (ec)
    {
      k.errors.fetch_add(1);
      continue;
    }
    asio::co_spawn(a.get_executor(), session(std::move(s), k), asio::detached);
  }
}

// Client c: messages until stop, each checked byte for byte.
asio::awaitable<void> client(tcp::endpoint ep, int c, const std::atomic<bool>& stop, counters& k)
{
  tcp::socket s(co_await asio::this_coro::executor);
  error_code ec;
  co_await s.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
  {
    std::fprintf(stderr, "soak: connect %d: %s\n", c, ec.message().c_str());
    k.errors.fetch_add(1);
    k.finished.fetch_add(1);
    co_return;
  }
  s.set_option(tcp::no_delay(true));
  k.connected.fetch_add(1);
  std::vector<char> out(4096), in(4096);
  for (long m = 0; !stop.load(std::memory_order_relaxed); ++m)
  {
    const std::size_t len = length_of(c, m);
    for (std::size_t i = 0; i < len; ++i)
      out[i] = pattern(c, m, i);
    co_await asio::async_write(s, asio::buffer(out.data(), len), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec)
      co_await asio::async_read(s, asio::buffer(in.data(), len), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
    {
      std::fprintf(stderr, "soak: connection %d message %ld: %s\n", c, m, ec.message().c_str());
      k.errors.fetch_add(1);
      break;
    }
    if (std::memcmp(out.data(), in.data(), len) != 0)
    {
      std::fprintf(stderr, "soak: connection %d message %ld: %zu bytes came back different\n", c, m, len);
      k.corrupted.fetch_add(1);
      break;
    }
    k.messages.fetch_add(1, std::memory_order_relaxed);
    k.bytes.fetch_add(static_cast<long>(len), std::memory_order_relaxed);
  }
  s.close(ec);
  k.finished.fetch_add(1);
}

struct snapshot
{
  long messages, bytes, rss, fds;
};

snapshot take(const counters& k)
{
  return {k.messages.load(), k.bytes.load(), rss_kib(), zokio_test::open_descriptors()};
}

template <typename Server>
int soak(Server& server_ctx, const std::function<void()>& run_server, const std::function<void()>& join_server,
    int connections, int seconds)
{
  counters k;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0), true);
  acceptor.listen(4096);
  const tcp::endpoint ep = acceptor.local_endpoint();
  asio::co_spawn(acceptor.get_executor(), accept_loop(acceptor, k), asio::detached);
  run_server();

  zokio::io_context clients(1);
  std::atomic<bool> stop{false};
  for (int c = 0; c < connections; ++c)
    asio::co_spawn(clients, client(ep, c, stop, k), asio::detached);
  std::thread client_thread([&] { clients.run(); });

  auto t0 = std::chrono::steady_clock::now();
  while (k.connected.load() + k.finished.load() < connections
      && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // A second of traffic before the first figures (buffers and caches fill).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const snapshot start = take(k);
  std::printf("start: %ld connections, rss %ld KiB, descriptors %ld\n", k.connected.load(), start.rss, start.fds);
  std::fflush(stdout);

  const auto end_at = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  long last = 0;
  while (std::chrono::steady_clock::now() < end_at && k.errors.load() == 0 && k.corrupted.load() == 0)
  {
    std::this_thread::sleep_for(std::chrono::seconds(std::min(10, seconds)));
    long now = k.messages.load();
    std::printf("  %ld messages (+%ld), rss %ld KiB\n", now, now - last, rss_kib());
    std::fflush(stdout);
    last = now;
  }
  const snapshot end = take(k);
  stop.store(true);
  client_thread.join();
  asio::post(acceptor.get_executor(), [&] { acceptor.close(); });
  join_server();

  const long rss_bound = std::max(8L * 1024, start.rss / 4);
  std::printf("end: %ld messages, %ld bytes, %ld errors, %ld corrupted, rss %ld -> %ld KiB (bound +%ld), "
              "descriptors %ld -> %ld\n",
      end.messages, end.bytes, k.errors.load(), k.corrupted.load(), start.rss, end.rss, rss_bound, start.fds,
      end.fds);
  bool ok = true;
  if (k.connected.load() != connections)
  {
    std::printf("FAILED: %ld of %d connections up\n", k.connected.load(), connections);
    ok = false;
  }
  if (k.errors.load() || k.corrupted.load())
  {
    std::printf("FAILED: errors or corrupted messages\n");
    ok = false;
  }
  if (end.messages == start.messages)
  {
    std::printf("FAILED: no message echoed during the run\n");
    ok = false;
  }
  if (end.fds > start.fds)
  {
    std::printf("FAILED: descriptors grew\n");
    ok = false;
  }
  if (end.rss - start.rss > rss_bound)
  {
    std::printf("FAILED: rss grew beyond the bound\n");
    ok = false;
  }
  std::printf("%s\n", ok ? "soak: ok" : "soak: FAILED");
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char* argv[])
{
  int connections = 1000, seconds = 600;
  std::string context = "io_context";
  for (int i = 1; i + 1 < argc; i += 2)
  {
    std::string a = argv[i];
    if (a == "--connections")
      connections = std::atoi(argv[i + 1]);
    else if (a == "--seconds")
      seconds = std::atoi(argv[i + 1]);
    else if (a == "--context")
      context = argv[i + 1];
    else
    {
      std::fprintf(stderr, "usage: test_soak [--connections N] [--seconds S] [--context io_context|pool]\n");
      return 2;
    }
  }
  if (connections <= 0 || seconds <= 0 || (context != "io_context" && context != "pool"))
  {
    std::fprintf(stderr, "test_soak: connections and seconds must be positive, context io_context or pool\n");
    return 2;
  }
  // Two descriptors per connection (both ends are in this process), plus
  // the contexts' own.
  ::rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t need = static_cast<rlim_t>(connections) * 2 + 256;
  if (rl.rlim_cur < need)
  {
    rl.rlim_cur = std::min(need, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
    {
      std::fprintf(stderr, "test_soak: %d connections need %lu descriptors, the hard limit is %lu\n", connections,
          static_cast<unsigned long>(need), static_cast<unsigned long>(rl.rlim_max));
      return 2;
    }
  }
  try
  {
    std::printf("soak: %d connections, %d s, %s, backend %s\n", connections, seconds, context.c_str(),
        std::getenv("ZOKIO_BACKEND") ? std::getenv("ZOKIO_BACKEND") : "default");
    if (context == "pool")
    {
      zokio::thread_pool pool(2);
      return soak(pool, [] {}, [&] { pool.join(); }, connections, seconds);
    }
    zokio::io_context server(1);
    std::optional<std::thread> t;
    return soak(server, [&] { t.emplace([&] { server.run(); }); }, [&] { t->join(); }, connections, seconds);
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "test_soak: %s\n", e.what());
    return 1;
  }
}
