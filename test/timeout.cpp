// Tests of zokio::timeout.
#include <zokio/timeout.hpp>

#define BOOST_TEST_MODULE timeout
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>
#include <zokio/spawn.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/when_all.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>
#include <type_traits>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

// Posts the given arguments to a handler on ctx; names its I/O executor, as
// Asio's and zokio's initiations do.
struct initiate_complete_with
{
  zokio::io_context* ctx;

  using executor_type = zokio::io_context::executor_type;
  executor_type get_executor() const noexcept { return ctx->get_executor(); }

  template <typename Handler, typename... V>
  void operator()(Handler handler, V... v) const
  {
    asio::post(*ctx, [h = std::move(handler), v...]() mutable { std::move(h)(v...); });
  }
};

template <typename Signature, typename Token, typename... Values>
auto async_complete_with(zokio::io_context& ctx, Token&& token, Values... values)
{
  return asio::async_initiate<Token, Signature>(initiate_complete_with{&ctx}, token, values...);
}

zokio::future<void> wait_for(zokio::steady_timer& t, std::chrono::steady_clock::duration d)
{
  t.expires_after(d);
  return t.async_wait(zokio::use_future);
}

template <typename T>
error_code error_of(zokio::future<T>& f)
{
  try
  {
    f.get();
  }
  catch (const boost::system::system_error& e)
  {
    return e.code();
  }
  return error_code();
}

} // namespace

//------------------------------------------------------------------------------
// Compile section.

namespace compile {

[[maybe_unused]] void interface(zokio::io_context& ctx, zokio::steady_timer& t)
{
  static_assert(std::is_same_v<decltype(zokio::timeout(t.async_wait(zokio::use_future), 1s)),
      zokio::future<void>>);
  static_assert(std::is_same_v<decltype(zokio::timeout(
      async_complete_with<void(int)>(ctx, zokio::use_future, 1), std::chrono::milliseconds(5))),
      zokio::future<int>>);
  static_assert(std::is_same_v<decltype(zokio::timeout(ctx.get_executor(),
      t.async_wait(zokio::use_future), 1.5s)), zokio::future<void>>);
  static_assert(std::is_same_v<decltype(zokio::timeout(asio::any_io_executor(ctx.get_executor()),
      t.async_wait(zokio::use_future), 1s)), zokio::future<void>>);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(result_in_time)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  auto a = zokio::timeout(async_complete_with<void(int)>(ctx, zokio::use_future, 5), 10s);
  auto b = zokio::timeout(wait_for(t, 1ms), 10s);
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 5000.0); // the deadline was cancelled
  BOOST_TEST(a.get() == 5);
  b.get();
}

BOOST_AUTO_TEST_CASE(timed_out)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  auto f = zokio::timeout(wait_for(t, 1h), 5ms);
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  double ms = zokio_test::ms_since(t0);
  BOOST_TEST(ms >= 4.0);
  BOOST_TEST(ms < 1000.0);
  BOOST_TEST(error_of(f) == asio::error::timed_out);
}

BOOST_AUTO_TEST_CASE(own_failure_is_kept)
{
  zokio::io_context ctx;
  auto f = zokio::timeout(async_complete_with<void(error_code, int)>(
      ctx, zokio::use_future, error_code(asio::error::eof), 0), 1h);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(error_of(f) == asio::error::eof);
}

BOOST_AUTO_TEST_CASE(ready_or_empty_input_is_returned_as_is)
{
  zokio::io_context ctx;
  auto ready = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  zokio_test::run_bounded(ctx);
  auto f = zokio::timeout(std::move(ready), 1ms);
  BOOST_TEST(f.ready());
  BOOST_TEST(f.get() == 1);
  auto g = zokio::timeout(zokio::future<int>(), 1ms);
  BOOST_TEST(!g.valid());
}

BOOST_AUTO_TEST_CASE(no_context_known)
{
  // An operation on Asio's io_context: no zokio context to time it on,
  // unless one is given.
  asio::io_context actx;
  auto f = asio::post(actx, zokio::use_future);
  BOOST_CHECK_THROW(zokio::timeout(std::move(f), 1s), boost::system::system_error);

  zokio::io_context ctx;
  asio::steady_timer t(actx, 1h);
  auto g = zokio::timeout(ctx.get_executor(), t.async_wait(zokio::use_future), 2ms);
  std::thread runner([&] { zokio_test::run_bounded(ctx); });
  // The deadline cancels the wait, which completes when actx runs.
  std::this_thread::sleep_for(20ms);
  actx.run();
  runner.join();
  BOOST_TEST(error_of(g) == asio::error::timed_out);
}

BOOST_AUTO_TEST_CASE(cancel_cancels_input_and_deadline)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  auto f = zokio::timeout(wait_for(t, 1h), 1h);
  f.cancel();
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  BOOST_TEST(error_of(f) == asio::error::operation_aborted);

  ctx.restart();
  {
    auto dropped = zokio::timeout(wait_for(t, 1h), 1h);
  }
  t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
}

BOOST_AUTO_TEST_CASE(in_a_coroutine)
{
  zokio::io_context ctx;
  int timeouts = 0;
  int results = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(ctx);
    for (int i = 0; i < 20; ++i)
    {
      try
      {
        co_await zokio::timeout(wait_for(t, i % 2 ? 1h : 0ns), 1ms);
        ++results;
      }
      catch (const boost::system::system_error& e)
      {
        if (e.code() == asio::error::timed_out)
          ++timeouts;
      }
      co_await zokio::timeout(zokio::detail::async_nop(ctx.get_executor(), zokio::use_future), 1s);
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(timeouts == 10);
  BOOST_TEST(results == 10);
}

BOOST_AUTO_TEST_CASE(spawned_coroutine_timed_out)
{
  // The coroutine is aborted when the time runs out.
  zokio::io_context ctx;
  bool unwound = false;
  auto f = zokio::timeout(zokio::spawn(ctx, [&]() -> asio::awaitable<int> {
    zokio::steady_timer t(ctx, 1h);
    try
    {
      co_await t.async_wait(zokio::use_future);
    }
    catch (...)
    {
      unwound = true;
      throw;
    }
    co_return 1;
  }), 2ms);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(unwound);
  BOOST_TEST(error_of(f) == asio::error::timed_out);
}

BOOST_AUTO_TEST_CASE(races_between_completion_and_deadline)
{
  // The input and the deadline finish at about the same time, on a context
  // run by another thread; the result is either, never lost, never both.
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  zokio::steady_timer t(ctx);
  int ok = 0, late = 0;
  for (int i = 0; i < 300; ++i)
  {
    t.expires_after(std::chrono::microseconds(i % 50));
    auto f = zokio::timeout(t.async_wait(zokio::use_future), std::chrono::microseconds(25));
    error_code ec = error_of(f);
    if (!ec)
      ++ok;
    else if (ec == asio::error::timed_out)
      ++late;
    else
      BOOST_FAIL("unexpected " << ec.message());
  }
  guard.reset();
  runner.join();
  BOOST_TEST(ok + late == 300);
}
