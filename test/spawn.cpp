// Tests of zokio::spawn and zokio::join_handle.
#include <zokio/spawn.hpp>

#define BOOST_TEST_MODULE spawn
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <zokio/io_context.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

asio::awaitable<int> answer()
{
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return 42;
}

asio::awaitable<void> nothing()
{
  co_return;
}

asio::awaitable<int> fails()
{
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  throw std::runtime_error("inside");
}

// Waits an hour on a zokio timer; returns -1 if cancelled.
asio::awaitable<int> sleeper(zokio::io_context& ctx)
{
  zokio::steady_timer t(ctx, 1h);
  try
  {
    co_await t.async_wait(zokio::use_future);
  }
  catch (const boost::system::system_error& e)
  {
    if (e.code() == asio::error::operation_aborted)
      co_return -1;
    throw;
  }
  co_return 1;
}

struct context_thread
{
  explicit context_thread(zokio::io_context& c)
    : ctx(c), guard(asio::make_work_guard(c)), thread([this] { ctx.run(); })
  {
  }

  ~context_thread()
  {
    guard.reset();
    thread.join();
  }

  zokio::io_context& ctx;
  asio::executor_work_guard<zokio::io_context::executor_type> guard;
  std::thread thread;
};

} // namespace

//------------------------------------------------------------------------------
// Compile section.

namespace compile {

[[maybe_unused]] void interface(zokio::io_context& ctx, asio::io_context& actx)
{
  static_assert(std::is_same_v<decltype(zokio::spawn(ctx, answer())), zokio::join_handle<int>>);
  static_assert(std::is_same_v<decltype(zokio::spawn(ctx.get_executor(), nothing())),
      zokio::join_handle<void>>);
  static_assert(std::is_same_v<decltype(zokio::spawn(ctx, [] { return answer(); })),
      zokio::join_handle<int>>);
  static_assert(std::is_same_v<decltype(zokio::spawn(asio::any_io_executor(ctx.get_executor()),
      answer())), zokio::join_handle<int>>);
  static_assert(std::is_same_v<decltype(zokio::spawn(actx, answer())), zokio::join_handle<int>>);
  static_assert(std::is_base_of_v<zokio::future<int>, zokio::join_handle<int>>);
  static_assert(!std::is_copy_constructible_v<zokio::join_handle<int>>);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(result_of_the_coroutine)
{
  zokio::io_context ctx;
  auto a = zokio::spawn(ctx, answer());
  auto b = zokio::spawn(ctx.get_executor(), nothing());
  auto c = zokio::spawn(ctx, [] { return answer(); });
  auto d = zokio::spawn(asio::any_io_executor(ctx.get_executor()), answer());
  BOOST_TEST(!a.ready());
  zokio_test::run_bounded(ctx);
  BOOST_TEST(a.ready());
  BOOST_TEST(a.get() == 42);
  b.get();
  BOOST_TEST(c.get() == 42);
  BOOST_TEST(d.get() == 42);
}

BOOST_AUTO_TEST_CASE(exceptions_reach_the_joiner)
{
  zokio::io_context ctx;
  auto h = zokio::spawn(ctx, fails());
  std::string seen;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    try
    {
      co_await zokio::spawn(ctx, fails());
    }
    catch (const std::runtime_error& e)
    {
      seen = e.what();
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_CHECK_THROW(h.get(), std::runtime_error);
  BOOST_TEST(seen == "inside");
}

BOOST_AUTO_TEST_CASE(join_from_another_thread)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  for (int i = 0; i < 100; ++i)
  {
    auto h = zokio::spawn(ctx, answer());
    BOOST_TEST(h.get() == 42);
  }
  auto e = zokio::spawn(ctx, fails());
  BOOST_CHECK_THROW(e.get(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(get_on_the_coroutines_context_is_refused)
{
  zokio::io_context ctx;
  bool refused = false;
  asio::post(ctx, [&] {
    auto h = zokio::spawn(ctx, sleeper(ctx));
    try
    {
      h.get();
    }
    catch (const boost::system::system_error& e)
    {
      refused = e.code() == zokio::error::would_deadlock;
    }
    h.abort();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(refused);
}

BOOST_AUTO_TEST_CASE(abort_cancels_at_the_suspension_point)
{
  zokio::io_context ctx;
  auto h = zokio::spawn(ctx, sleeper(ctx));
  asio::post(ctx, [&] { h.abort(); });
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  BOOST_TEST(h.get() == -1);
}

BOOST_AUTO_TEST_CASE(abort_before_the_coroutine_runs)
{
  // The request reaches the coroutine once it runs: the operation it then
  // awaits cannot be cancelled (a post), but the co_await after it throws
  // operation_aborted.
  zokio::io_context ctx;
  auto h = zokio::spawn(ctx, [&]() -> asio::awaitable<int> {
    for (int i = 0; i < 3; ++i)
      co_await asio::post(ctx, asio::use_awaitable);
    co_return 1;
  });
  h.abort();
  zokio_test::run_bounded(ctx);
  try
  {
    h.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
}

BOOST_AUTO_TEST_CASE(abort_from_another_thread)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  for (int i = 0; i < 100; ++i)
  {
    auto h = zokio::spawn(ctx, sleeper(ctx));
    if (i % 2)
      std::this_thread::yield();
    h.abort();
    int r = 0;
    try
    {
      r = h.get();
    }
    catch (const boost::system::system_error& e)
    {
      // Aborted before its first suspension.
      BOOST_TEST(e.code() == asio::error::operation_aborted);
      r = -1;
    }
    BOOST_TEST(r == -1);
  }
}

BOOST_AUTO_TEST_CASE(abort_after_completion_has_no_effect)
{
  zokio::io_context ctx;
  auto h = zokio::spawn(ctx, answer());
  zokio_test::run_bounded(ctx);
  h.abort();
  BOOST_TEST(h.get() == 42);
}

BOOST_AUTO_TEST_CASE(dropping_the_handle_detaches)
{
  zokio::io_context ctx;
  auto ran = std::make_shared<std::atomic<int>>(0);
  {
    auto h = zokio::spawn(ctx, [ran, &ctx]() -> asio::awaitable<void> {
      zokio::steady_timer t(ctx, 2ms);
      co_await t.async_wait(zokio::use_future);
      ++*ran;
    });
  }
  zokio::spawn(ctx, [ran]() -> asio::awaitable<void> {
    ++*ran;
    co_return;
  });
  zokio::join_handle<void> moved = zokio::spawn(ctx, nothing());
  moved = zokio::spawn(ctx, [ran]() -> asio::awaitable<void> { // detaches the first
    ++*ran;
    co_return;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ran->load() == 3);
  moved.get();
}

BOOST_AUTO_TEST_CASE(as_a_future)
{
  // A join_handle moved into a plain future (as the combinators take it)
  // keeps the result, and cancels the coroutine if dropped unfinished.
  zokio::io_context ctx;
  zokio::future<int> f = zokio::spawn(ctx, answer());
  zokio_test::run_bounded(ctx);
  BOOST_TEST(f.get() == 42);

  ctx.restart();
  {
    zokio::future<int> dropped = zokio::spawn(ctx, sleeper(ctx));
  }
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
}

BOOST_AUTO_TEST_CASE(other_executors)
{
  // On Asio's io_context.
  asio::io_context actx;
  auto a = zokio::spawn(actx, answer());
  auto s = zokio::spawn(actx, [&]() -> asio::awaitable<int> {
    asio::steady_timer t(actx, 1h);
    co_await t.async_wait(asio::use_awaitable);
    co_return 1;
  });
  asio::post(actx, [&] { s.abort(); });
  actx.run();
  BOOST_TEST(a.get() == 42);
  BOOST_CHECK_THROW(s.get(), boost::system::system_error);

  // On a strand over a zokio context, aborted from another thread.
  zokio::io_context ctx;
  context_thread runner(ctx);
  auto strand = asio::make_strand(ctx);
  auto h = zokio::spawn(strand, [&]() -> asio::awaitable<int> {
    zokio::steady_timer t(ctx, 1h);
    co_await t.async_wait(zokio::use_future);
    co_return 1;
  });
  std::this_thread::sleep_for(1ms);
  h.abort();
  BOOST_CHECK_THROW(h.get(), boost::system::system_error);
}
