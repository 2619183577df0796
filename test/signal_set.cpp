// Tests of zokio::signal_set on every backend.
#include <zokio/signal_set.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>

#define BOOST_TEST_MODULE signal_set
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <csignal>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

// Another library's handler, to check that zokio chains to it.
std::atomic<int> other_library_calls{0};
void other_library_handler(int) { ++other_library_calls; }

bool action_is(int sig, void (*handler)(int))
{
  struct sigaction sa;
  ::sigaction(sig, nullptr, &sa);
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == handler;
}

} // namespace

namespace compile {

static_assert(!std::is_copy_constructible_v<zokio::signal_set>);

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::signal_set& s)
{
  int n = co_await s.async_wait(asio::use_awaitable);
  (void)n;
}

} // namespace compile

BOOST_AUTO_TEST_CASE(a_raised_signal_completes_a_pending_wait)
{
  zokio::io_context ctx;
  zokio::signal_set set(ctx, SIGUSR1);
  error_code ec = asio::error::would_block;
  int got = 0;
  set.async_wait([&](error_code e, int n) {
    ec = e;
    got = n;
  });
  zokio::steady_timer t(ctx, 5ms);
  t.async_wait([](error_code) { ::raise(SIGUSR1); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!ec);
  BOOST_TEST(got == SIGUSR1);
}

BOOST_AUTO_TEST_CASE(signals_raised_with_no_wait_are_kept_and_counted)
{
  zokio::io_context ctx;
  zokio::signal_set set(ctx, SIGUSR1, SIGUSR2);
  // Raised before any wait and before the context runs.
  ::raise(SIGUSR2);
  ::raise(SIGUSR2);
  ::raise(SIGUSR1);
  std::vector<int> got;
  std::function<void(error_code, int)> on = [&](error_code e, int n) {
    BOOST_TEST(!e);
    got.push_back(n);
    if (got.size() < 3)
      set.async_wait(on);
  };
  set.async_wait(on);
  zokio_test::run_bounded(ctx);
  BOOST_REQUIRE(got.size() == 3u);
  std::sort(got.begin(), got.end());
  BOOST_TEST(got[0] == std::min(SIGUSR1, SIGUSR2));
  BOOST_TEST(std::count(got.begin(), got.end(), SIGUSR2) == 2);
}

BOOST_AUTO_TEST_CASE(every_set_in_every_context_sees_each_signal)
{
  zokio::io_context a, b;
  zokio::signal_set a1(a, SIGUSR1), a2(a, SIGUSR1), b1(b, SIGUSR1);
  std::atomic<int> seen{0};
  auto on = [&](error_code e, int n) {
    if (!e && n == SIGUSR1)
      ++seen;
  };
  a1.async_wait(on);
  a2.async_wait(on);
  b1.async_wait(on);
  // Only context a reads the pipe at first: b is run afterwards and finds
  // its wait completed by a's read (posted to b).
  zokio::steady_timer t(a, 5ms);
  t.async_wait([](error_code) { ::raise(SIGUSR1); });
  zokio_test::run_bounded(a);
  BOOST_TEST(seen.load() == 2);
  zokio_test::run_bounded(b);
  BOOST_TEST(seen.load() == 3);
}

BOOST_AUTO_TEST_CASE(a_signal_from_another_process_reaches_a_thread_pool)
{
  zokio::thread_pool pool(2);
  zokio::signal_set set(pool, SIGUSR2);
  auto f = set.async_wait(asio::use_future);
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child == 0)
  {
    ::usleep(10000);
    ::kill(parent, SIGUSR2);
    ::_exit(0);
  }
  BOOST_REQUIRE(child > 0);
  BOOST_TEST((f.wait_for(10s) == std::future_status::ready));
  BOOST_TEST(f.get() == SIGUSR2);
  int status = 0;
  ::waitpid(child, &status, 0);
  pool.join();
}

BOOST_AUTO_TEST_CASE(cancel_destruction_and_per_operation_cancellation_abort_waits)
{
  zokio::io_context ctx;
  error_code e1, e2, e3;
  auto set = std::make_unique<zokio::signal_set>(ctx, SIGUSR1);
  zokio::signal_set other(ctx, SIGUSR1);
  asio::cancellation_signal sig;
  set->async_wait([&](error_code e, int) { e1 = e; });
  other.async_wait(asio::bind_cancellation_slot(sig.slot(), [&](error_code e, int) { e2 = e; }));
  zokio::signal_set third(ctx);
  third.async_wait([&](error_code e, int) { e3 = e; });
  asio::post(ctx, [&] {
    set.reset();
    sig.emit(asio::cancellation_type::terminal);
    third.cancel();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(e1 == asio::error::operation_aborted);
  BOOST_TEST(e2 == asio::error::operation_aborted);
  BOOST_TEST(e3 == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(awaitable_operators_cancel_a_signal_wait)
{
  using namespace asio::experimental::awaitable_operators;
  zokio::io_context ctx;
  zokio::signal_set set(ctx, SIGUSR1);
  bool timer_won = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(ctx, 5ms);
    auto v = co_await (set.async_wait(asio::use_awaitable) || t.async_wait(asio::use_awaitable));
    timer_won = v.index() == 1;
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(timer_won);
}

BOOST_AUTO_TEST_CASE(run_returns_when_no_wait_is_pending)
{
  zokio::io_context ctx;
  zokio::signal_set set(ctx, SIGUSR1, SIGUSR2);
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx, 5s);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
}

BOOST_AUTO_TEST_CASE(the_previous_handler_is_chained_and_restored)
{
  struct sigaction sa{};
  sa.sa_handler = &other_library_handler;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR1, &sa, nullptr);
  other_library_calls = 0;
  {
    zokio::io_context ctx;
    zokio::signal_set s1(ctx, SIGUSR1), s2(ctx, SIGUSR1);
    BOOST_TEST(!action_is(SIGUSR1, &other_library_handler));
    int got = 0;
    s1.async_wait([&](error_code, int n) { got = n; });
    asio::post(ctx, [] { ::raise(SIGUSR1); });
    zokio_test::run_bounded(ctx);
    BOOST_TEST(got == SIGUSR1);
    BOOST_TEST(other_library_calls.load() == 1, "the other library's handler ran too");
    s1.remove(SIGUSR1);
    BOOST_TEST(!action_is(SIGUSR1, &other_library_handler), "s2 still holds the number");
    s2.clear();
    BOOST_TEST(action_is(SIGUSR1, &other_library_handler), "the last removal restores it");
    s2.add(SIGUSR1);
  }
  // Destroying the last set holding it restores it too.
  BOOST_TEST(action_is(SIGUSR1, &other_library_handler));
  std::signal(SIGUSR1, SIG_DFL);
}

BOOST_AUTO_TEST_CASE(bad_signal_numbers_are_invalid_argument)
{
  zokio::io_context ctx;
  zokio::signal_set set(ctx);
  error_code ec;
  set.add(0, ec);
  BOOST_TEST(ec == asio::error::invalid_argument);
  set.add(100000, ec);
  BOOST_TEST(ec == asio::error::invalid_argument);
  set.add(-3, ec);
  BOOST_TEST(ec == asio::error::invalid_argument);
  set.add(SIGKILL, ec);
  BOOST_TEST(ec == asio::error::invalid_argument);
  BOOST_CHECK_THROW(set.add(SIGSTOP), boost::system::system_error);
  set.remove(SIGUSR1, ec);
  BOOST_TEST(!ec, "removing a number the set does not hold succeeds");
  set.add(SIGUSR1, ec);
  BOOST_TEST(!ec);
  set.add(SIGUSR1, ec);
  BOOST_TEST(!ec, "adding it twice succeeds");
}

BOOST_AUTO_TEST_CASE(a_removed_number_is_no_longer_delivered_to_the_set)
{
  zokio::io_context ctx;
  zokio::signal_set set(ctx, SIGUSR1, SIGUSR2);
  ::raise(SIGUSR1);  // kept, then dropped by remove
  set.remove(SIGUSR1);
  int got = 0;
  set.async_wait([&](error_code, int n) { got = n; });
  zokio::steady_timer t(ctx, 5ms);
  t.async_wait([](error_code) { ::raise(SIGUSR2); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(got == SIGUSR2);
}

BOOST_AUTO_TEST_CASE(a_context_destroyed_with_a_coroutine_waiting_on_its_own_set)
{
  // The coroutine's frame holds the set: destroying the pending wait at
  // shutdown destroys the set too, inside the service's shutdown.
  bool started = false;
  {
    zokio::io_context ctx;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
      zokio::signal_set set(co_await asio::this_coro::executor, SIGUSR2);
      started = true;
      co_await set.async_wait(asio::use_awaitable);
    }, asio::detached);
    ctx.run_for(std::chrono::milliseconds(20));
  }
  BOOST_TEST(started);
  // The number is free again: the action is the default.
  struct sigaction sa;
  ::sigaction(SIGUSR2, nullptr, &sa);
  BOOST_TEST(!(sa.sa_flags & SA_SIGINFO));
}

BOOST_AUTO_TEST_CASE(a_set_may_outlive_its_context)
{
  std::optional<zokio::io_context> ctx(std::in_place);
  auto set = std::make_unique<zokio::signal_set>(*ctx, SIGUSR1);
  error_code ec;
  bool called = false;
  set->async_wait([&](error_code e, int) { ec = e; called = true; });
  ctx.reset();  // the wait is destroyed unrun (as Asio's are at shutdown)
  BOOST_TEST(!called);
  set.reset();  // touches only its own state
  struct sigaction sa;
  ::sigaction(SIGUSR1, nullptr, &sa);
  BOOST_TEST(!(sa.sa_flags & SA_SIGINFO), "the context's shutdown restored the action");
}
