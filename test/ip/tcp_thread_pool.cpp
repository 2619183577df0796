// Tests of zokio::ip::tcp on zokio::thread_pool: operations submitted on the
// ring of the worker that starts them (or handed to a worker when started
// from outside the pool), completions stolen by the other worker, and
// cancellation sent to the ring that holds the operation. Run under
// ThreadSanitizer (label "threads").
#include <zokio/ip/tcp.hpp>

#define BOOST_TEST_MODULE ip_tcp_thread_pool
#include <boost/test/unit_test.hpp>

#include <support/harness.hpp>
#include <support/net.hpp>

#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/uring/accept_engine.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;
using zokio::ip::tcp;

namespace {

std::string pattern(std::size_t n, unsigned seed)
{
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

} // namespace

// (No BOOST_TEST inside handlers: they run on the workers and Boost.Test's
// log is not thread-safe. Results go through atomics and are checked after
// the pool has joined.)

BOOST_AUTO_TEST_CASE(echo_on_a_two_worker_pool)
{
  zokio_test::thread_pool_harness h;
  auto& pool = h.ctx;
  tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
  constexpr int conns = 16, rounds = 50;
  std::atomic<int> echoed{0}, mismatches{0}, errors{0}, off_pool{0};
  auto check_thread = [&] {
    if (!pool.get_executor().running_in_this_thread())
      ++off_pool;
  };
  auto session = [&](tcp::socket s) -> asio::awaitable<void> {
    char buf[512];
    for (;;)
    {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      check_thread();
      if (ec)
        co_return;
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
  };
  asio::co_spawn(pool, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < conns; ++i)
      asio::co_spawn(pool, session(co_await acceptor.async_accept(asio::use_awaitable)), asio::detached);
  }, [&](std::exception_ptr e) { if (e) ++errors; });
  for (int c = 0; c < conns; ++c)
  {
    asio::co_spawn(pool, [&, c]() -> asio::awaitable<void> {
      tcp::socket s(pool);
      co_await s.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
      std::string msg = pattern(300 + c, c), got(msg.size(), '\0');
      for (int r = 0; r < rounds; ++r)
      {
        co_await asio::async_write(s, asio::buffer(msg), asio::use_awaitable);
        co_await asio::async_read(s, asio::buffer(got), asio::use_awaitable);
        check_thread();
        if (got != msg)
          ++mismatches;
      }
      ++echoed;
    }, [&](std::exception_ptr e) { if (e) ++errors; });
  }
  h.run();
  BOOST_TEST(echoed.load() == conns);
  BOOST_TEST(mismatches.load() == 0);
  BOOST_TEST(errors.load() == 0);
  BOOST_TEST(off_pool.load() == 0);
  BOOST_TEST_MESSAGE("steals: " << pool.statistics().steals);
}

BOOST_AUTO_TEST_CASE(operations_started_outside_the_pool_are_handed_to_a_worker)
{
  zokio::thread_pool pool(2);
  auto [a, b] = zokio_test::connected_pair(pool);
  // Started from this thread, which runs no worker.
  std::promise<std::pair<error_code, std::size_t>> got;
  std::atomic<bool> on_pool{false};
  char buf[8];
  a.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
    on_pool = pool.get_executor().running_in_this_thread();
    got.set_value({ec, n});
  });
  std::promise<error_code> sent;
  b.async_write_some(asio::buffer("hey", 3), [&](error_code ec, std::size_t) { sent.set_value(ec); });
  auto [read_ec, read_n] = got.get_future().get();
  BOOST_TEST(!read_ec);
  BOOST_TEST(read_n == 3u);
  BOOST_TEST(!sent.get_future().get());
  BOOST_TEST(on_pool.load());
  // In a worker's ring; cancelled from this thread (handed to that worker).
  std::promise<error_code> cancelled;
  a.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) { cancelled.set_value(ec); });
  std::this_thread::sleep_for(10ms);
  a.cancel();
  BOOST_TEST((cancelled.get_future().get() == asio::error::operation_aborted));
  pool.join();
}

BOOST_AUTO_TEST_CASE(cancel_from_any_thread_races_completion)
{
  // Reads started on a worker, each raced by a cancel from this thread or
  // from a handler on either worker (not necessarily the read's): every read
  // completes exactly once, the cancel reaching the ring that holds it.
  zokio::thread_pool pool(2);
  auto [a, b] = zokio_test::connected_pair(pool);
  constexpr int rounds = 1000;
  char buf[64];
  std::atomic<int> completions{0}, aborted{0}, bad{0};
  for (int i = 0; i < rounds; ++i)
  {
    std::promise<void> done;
    std::atomic<bool> started{false};
    asio::post(pool, [&, &a = a] {
      a.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) {
        ++completions;
        if (ec == asio::error::operation_aborted)
          ++aborted;
        else if (ec)
          ++bad;
        done.set_value();
      });
      started = true;
    });
    if (i % 3 == 1)
      b.send(asio::buffer("d", 1));
    while (!started)
      std::this_thread::yield();
    if (i % 2)
      a.cancel();
    else
      asio::post(pool, [&a = a] { a.cancel(); });
    done.get_future().wait();
  }
  pool.join();
  BOOST_TEST(completions.load() == rounds);
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(aborted.load() > 0);
}

BOOST_AUTO_TEST_CASE(per_operation_cancellation_and_timeouts_on_the_pool)
{
  zokio_test::thread_pool_harness h;
  auto& pool = h.ctx;
  auto [a, b] = zokio_test::connected_pair(pool);
  std::atomic<int> timer_won{0}, read_won{0}, errors{0};
  std::string what; // written by the worker, read after join
  auto strand = asio::make_strand(pool);
  // The reading socket on the strand (an any_io_executor holding a strand of
  // the pool's executor); the timer on the pool's executor.
  tcp::socket sa(strand, tcp::v4(), a.release());
  zokio::steady_timer timer(pool);
  asio::co_spawn(strand, [&, &a = sa, &b = b]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    char buf[16];
    for (int i = 0; i < 20; ++i)
    {
      timer.expires_after(1ms);
      auto r = co_await (a.async_read_some(asio::buffer(buf), asio::use_awaitable)
          || timer.async_wait(asio::use_awaitable));
      timer_won += r.index() == 1;
      timer.expires_after(30s);
      b.send(asio::buffer("x", 1));
      auto r2 = co_await (a.async_read_some(asio::buffer(buf), asio::use_awaitable)
          || timer.async_wait(asio::use_awaitable));
      read_won += r2.index() == 0;
    }
  }, [&](std::exception_ptr e) {
    if (e)
    {
      ++errors;
      try { std::rethrow_exception(e); } catch (const std::exception& x) { what = x.what(); }
    }
  });
  h.run();
  BOOST_TEST(timer_won.load() == 20);
  BOOST_TEST(read_won.load() == 20);
  BOOST_TEST(errors.load() == 0, what);
}

//------------------------------------------------------------------------------
// Workers leaving with a multishot accept armed (accept_engine.hpp). The
// request is not work: it stays armed when the pool runs out of work, in
// the ring of the worker that armed it, which only that worker can enter.
// Each worker cancels it and reaps it to its last completion before it
// leaves (scheduler.hpp, "Leaving for good"); otherwise the pool could not
// free that worker's state (scheduler::retained_runners) and the acceptor's
// descriptor would stay open. The first two cases also hold with one
// IORING_OP_ACCEPT per accept (ZOKIO_MULTISHOT_ACCEPT=0).

namespace {

struct leak_baseline
{
  std::uint64_t retained;
  std::size_t fds;

  leak_baseline()
  {
    // Probed once per process on a private ring: before the count.
    (void)zokio::detail::accept_engine::enabled();
    retained = zokio::detail::scheduler::retained_runners();
    fds = zokio_test::open_fds();
  }

  void check() const
  {
    BOOST_TEST(zokio::detail::scheduler::retained_runners() == retained);
    BOOST_TEST(zokio_test::open_fds() == fds);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(workers_leave_no_accept_request_behind)
{
  leak_baseline baseline;
  std::atomic<int> accepted{0}, errors{0};
  {
    zokio::thread_pool pool(2);
    tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
    asio::co_spawn(pool, [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 4; ++i)
      {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        ++accepted;
      }
    }, [&](std::exception_ptr e) { if (e) ++errors; });
    std::vector<tcp::socket> clients;
    for (int i = 0; i < 4; ++i)
    {
      clients.emplace_back(pool);
      clients.back().connect(acceptor.local_endpoint());
    }
    pool.join();
    // The workers have left; the acceptor closes its descriptor at once.
    const int fd = acceptor.native_handle();
    acceptor.close();
    BOOST_TEST(::fcntl(fd, F_GETFD) == -1);
  }
  BOOST_TEST(accepted.load() == 4);
  BOOST_TEST(errors.load() == 0);
  baseline.check();
  BOOST_TEST_MESSAGE("multishot accept " << (zokio::detail::accept_engine::enabled() ? "on" : "off"));
}

BOOST_AUTO_TEST_CASE(connections_arriving_while_the_pool_winds_down_are_not_leaked)
{
  // A thread keeps connecting while the accept loop ends and the workers
  // leave: connections arrive before (accepted, or queued in the acceptor),
  // during (in the completions the leaving worker reaps) and after (in the
  // listen backlog) the retirement. None may leave a descriptor open.
  zokio_test::raise_fd_limit(1024);
  leak_baseline baseline;
  std::atomic<int> accepted{0}, connected{0};
  {
    zokio::thread_pool pool(2);
    tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
    const auto ep = acceptor.local_endpoint();
    std::atomic<bool> winding_down{false}, stop{false};
    asio::co_spawn(pool, [&]() -> asio::awaitable<void> {
      while (!winding_down.load())
      {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        ++accepted;
      }
    }, asio::detached);
    std::thread connector([&] {
      std::vector<int> fds;
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(ep.port());
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      while (!stop.load() && fds.size() < 300)
      {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
          break;
        fds.push_back(fd);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0)
          ++connected;
        std::this_thread::sleep_for(100us);
      }
      for (int fd : fds)
        ::close(fd);
    });
    for (auto until = std::chrono::steady_clock::now() + 10s;
         accepted.load() < 5 && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(1ms);
    // The loop ends at its next accept (one more connection); the pool then
    // runs out of work and its workers leave while connections keep coming.
    winding_down = true;
    pool.join();
    std::this_thread::sleep_for(5ms);
    stop = true;
    connector.join();
  }
  BOOST_TEST(accepted.load() >= 5);
  BOOST_TEST_MESSAGE("connected " << connected.load() << ", accepted " << accepted.load());
  baseline.check();
}

// Needs the engine: a single IORING_OP_ACCEPT waiting when the pool stops
// is an operation in flight in the worker's ring, which the pool then
// keeps, as for any operation in flight when a pool is stopped (scheduler.hpp,
// "Leaving for good").
BOOST_AUTO_TEST_CASE(stopping_the_pool_with_an_accept_waiting,
    *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
      return zokio::detail::accept_engine::enabled();
    }))
{
  // The request is armed and an accept waits in the acceptor when the pool
  // stops: the leaving worker cancels the request without completing the
  // waiting accept, which is destroyed unrun with the pool (asio semantics),
  // and the acceptor's descriptor is closed.
  leak_baseline baseline;
  std::atomic<int> first{0}, second{0};
  {
    zokio::thread_pool pool(2);
    tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
    std::promise<void> waiting;
    asio::post(pool, [&] {
      acceptor.async_accept([&](error_code ec, tcp::socket) {
        first = ec ? -1 : 1;
        acceptor.async_accept([&](error_code, tcp::socket) { ++second; });
        waiting.set_value();
      });
    });
    tcp::socket client(pool);
    client.connect(acceptor.local_endpoint());
    waiting.get_future().wait();
    std::this_thread::sleep_for(5ms);
    pool.stop();
    pool.join();
  }
  BOOST_TEST(first.load() == 1);
  BOOST_TEST(second.load() == 0);
  baseline.check();
}
