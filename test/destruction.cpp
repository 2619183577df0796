// Destroying a context while operations are pending in the rings (or
// pollers) of several threads: every handler is destroyed exactly once and
// none is invoked, the I/O objects the handlers own are destroyed with them,
// and the heap holds no more blocks than before the context existed.
#include <zokio/io_context.hpp>
#include <zokio/posix/stream_descriptor.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>

#define BOOST_TEST_MODULE destruction
#include <boost/test/unit_test.hpp>


#include <boost/asio/post.hpp>

#include <atomic>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <support/live_blocks.hpp>

using zokio_test::live_blocks;

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

// Handler objects alive (every construction counted, every destruction
// uncounted: a handler destroyed twice drives it below zero) and handlers
// invoked.
std::atomic<long> live_handlers{0};
std::atomic<long> min_live{0};
std::atomic<long> invoked{0};

struct counted
{
  counted() { live_handlers.fetch_add(1); }
  counted(const counted&) { live_handlers.fetch_add(1); }
  counted(counted&&) noexcept { live_handlers.fetch_add(1); }
  ~counted()
  {
    long now = live_handlers.fetch_sub(1) - 1;
    long m = min_live.load();
    while (now < m && !min_live.compare_exchange_weak(m, now))
    {
    }
  }
};

// A read handler that owns its descriptor (as a session owns its socket):
// destroying the handler destroys the descriptor.
struct read_handler
{
  std::shared_ptr<zokio::posix::stream_descriptor> d;
  std::shared_ptr<std::array<char, 16>> buf;
  counted c;
  void operator()(error_code, std::size_t) { invoked.fetch_add(1); }
};

struct wait_handler
{
  std::shared_ptr<zokio::steady_timer> t;
  counted c;
  void operator()(error_code) { invoked.fetch_add(1); }
};

// Starts, on the calling thread (a thread that runs the context), `n` reads
// on descriptors whose other end stays open and silent (their peers are
// returned to the caller, who closes them after the context is gone), and
// `n` timer waits of an hour. Each handler owns its I/O object.
template <typename Executor>
void start_pending(const Executor& ex, int n, std::vector<int>& peers, std::mutex& m)
{
  for (int i = 0; i < n; ++i)
  {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw std::runtime_error("socketpair");
    {
      std::lock_guard<std::mutex> lock(m);
      peers.push_back(sv[1]);
    }
    auto d = std::make_shared<zokio::posix::stream_descriptor>(ex, sv[0]);
    auto buf = std::make_shared<std::array<char, 16>>();
    d->async_read_some(asio::buffer(*buf), read_handler{d, buf, {}});
    auto t = std::make_shared<zokio::steady_timer>(ex, 1h);
    t->async_wait(wait_handler{t, {}});
  }
}

// Open sockets (links "socket:[...]" in /proc/self/fd): what the cases open
// and zokio must close. Other descriptors are left out: libkqueue (the
// kqueue backend on Linux) frees the epoll, eventfd and pipe descriptors of
// a closed kqueue asynchronously.
int open_sockets()
{
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
  {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.native().rfind("socket:", 0) == 0)
      ++n;
  }
  return n;
}

struct baseline
{
  baseline()
  {
    // A context made and run once first: lazily made process-wide state
    // (libkqueue's monitoring thread and its socket pair, the blocking
    // pool) is not counted against the case.
    zokio::io_context warm;
    asio::post(warm, [] {});
    warm.run();
    blocks = live_blocks.load();
    fds = open_sockets();
  }
  long blocks;
  int fds;
};

void check_after(const baseline& before, const std::vector<int>& peers, long started)
{
  BOOST_TEST(invoked.load() == 0);
  BOOST_TEST(live_handlers.load() == 0);
  BOOST_TEST(min_live.load() == 0); // never below zero: nothing destroyed twice
  BOOST_TEST(started > 0);
  for (int fd : peers)
    ::close(fd);
  // (At most: libkqueue may close its own socket pair meanwhile.)
  BOOST_TEST(open_sockets() <= before.fds);
  // The calling thread's recycling cache (Asio's thread_info_base) may keep
  // a few blocks; one per operation left behind would be hundreds.
  const long extra = live_blocks.load() - before.blocks;
  BOOST_TEST_MESSAGE("heap blocks after: " << extra << " more than before the context");
  BOOST_TEST(extra <= 8);
}

void reset_counts()
{
  live_handlers = 0;
  min_live = 0;
  invoked = 0;
}

constexpr int threads = 3;
constexpr int per_thread = 32;

} // namespace

// A pool of three workers, each with reads and waits pending in its own
// ring (a latch makes each of the three starters run on a different
// worker), destroyed by its destructor (stop, join, shutdown).
BOOST_AUTO_TEST_CASE(a_pool_destroyed_with_operations_pending_on_every_worker)
{
  reset_counts();
  std::vector<int> peers;
  std::mutex m;
  baseline before;
  long started = 0;
  {
    zokio::thread_pool pool(threads);
    std::latch all_here(threads), all_started(threads);
    for (int t = 0; t < threads; ++t)
      asio::post(pool, [&] {
        all_here.arrive_and_wait();
        start_pending(pool.get_executor(), per_thread, peers, m);
        all_started.count_down();
      });
    all_started.wait();
    std::this_thread::sleep_for(20ms); // the requests reach the kernel
    started = live_handlers.load();
    BOOST_TEST(started == threads * per_thread * 2);
  }
  check_after(before, peers, started);
}

// An io_context run by three threads, each with reads and waits pending in
// its ring; the threads leave run() (stop) and exit; then the context is
// destroyed by the test thread.
BOOST_AUTO_TEST_CASE(an_io_context_destroyed_after_its_threads_exited)
{
  reset_counts();
  std::vector<int> peers;
  std::mutex m;
  baseline before;
  long started = 0;
  {
    zokio::io_context ctx(threads);
    auto guard = asio::make_work_guard(ctx);
    std::latch all_here(threads), all_started(threads);
    for (int t = 0; t < threads; ++t)
      asio::post(ctx, [&] {
        all_here.arrive_and_wait();
        start_pending(ctx.get_executor(), per_thread, peers, m);
        all_started.count_down();
      });
    std::vector<std::thread> runners;
    for (int t = 0; t < threads; ++t)
      runners.emplace_back([&] { ctx.run(); });
    all_started.wait();
    std::this_thread::sleep_for(20ms);
    started = live_handlers.load();
    BOOST_TEST(started == threads * per_thread * 2);
    ctx.stop();
    for (auto& r : runners)
      r.join();
  }
  check_after(before, peers, started);
}

// The same, destroyed on one of the threads that ran it (its own ring is
// cancelled and reaped there; the others' threads have exited).
BOOST_AUTO_TEST_CASE(an_io_context_destroyed_on_a_thread_that_ran_it)
{
  reset_counts();
  std::vector<int> peers;
  std::mutex m;
  baseline before;
  long started = 0;
  std::thread owner([&] {
    auto ctx = std::make_unique<zokio::io_context>(threads);
    auto guard = asio::make_work_guard(*ctx);
    std::latch all_here(threads), all_started(threads);
    for (int t = 0; t < threads; ++t)
      asio::post(*ctx, [&] {
        all_here.arrive_and_wait();
        start_pending(ctx->get_executor(), per_thread, peers, m);
        all_started.count_down();
      });
    std::vector<std::thread> others;
    for (int t = 0; t < threads - 1; ++t)
      others.emplace_back([&] { ctx->run(); });
    std::thread stopper([&] {
      all_started.wait();
      std::this_thread::sleep_for(20ms);
      started = live_handlers.load();
      ctx->stop();
    });
    ctx->run();
    stopper.join();
    for (auto& r : others)
      r.join();
    guard.reset();
    ctx.reset();
  });
  owner.join();
  BOOST_TEST(started == threads * per_thread * 2);
  check_after(before, peers, started);
}

// The same, the context going on on a thread that already has a runner of
// its own (the one that made the context): it takes the departed thread's
// runner over never, so the read must leave that runner with its thread
// (made again on the runner of whoever runs the context next).
BOOST_AUTO_TEST_CASE(a_read_outlives_its_thread_on_a_thread_with_a_runner)
{
  reset_counts();
  zokio::io_context ctx;
  int sv[2];
  BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  zokio::posix::stream_descriptor d(ctx, sv[0]);
  std::array<char, 16> buf{};
  int got = -1;
  error_code read_ec;
  std::thread first([&] {
    d.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
      read_ec = ec;
      got = int(n);
    });
    ctx.run_for(50ms);  // the read waits in this thread's ring or poller
  });
  first.join();
  BOOST_TEST(::write(sv[1], "hello", 5) == 5);
  ctx.restart();
  ctx.run_for(2s);  // returns when the read has completed (no other work)
  BOOST_TEST(!read_ec, read_ec.message());
  BOOST_TEST(got == 5);
  BOOST_TEST(std::string(buf.data(), 5) == "hello");
  ::close(sv[1]);
}

// A read started on a thread that then leaves the context and exits, while
// another thread goes on running it: the read completes when data comes.
BOOST_AUTO_TEST_CASE(a_read_outlives_the_thread_that_started_it)
{
  reset_counts();
  zokio::io_context ctx(2);
  auto guard = asio::make_work_guard(ctx);
  int sv[2];
  BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  zokio::posix::stream_descriptor d(ctx, sv[0]);
  std::array<char, 16> buf{};
  std::atomic<int> got{-1};
  std::thread first([&] {
    asio::post(ctx, [&] {
      d.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) { got = ec ? -2 : int(n); });
    });
    ctx.run_for(50ms); // starts the read in this thread's ring, then leaves
  });
  first.join(); // and the thread is gone
  std::thread second([&] { ctx.run(); });
  BOOST_TEST(::write(sv[1], "hello", 5) == 5);
  for (int i = 0; i < 200 && got.load() == -1; ++i)
    std::this_thread::sleep_for(10ms);
  BOOST_TEST(got.load() == 5);
  guard.reset();
  ctx.stop();
  second.join();
  ::close(sv[1]);
}
