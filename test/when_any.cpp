// Tests of zokio::when_any and zokio::select.
#include <zokio/when_any.hpp>

#define BOOST_TEST_MODULE when_any
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>
#include <zokio/spawn.hpp>
#include <zokio/timeout.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

template <typename Signature, typename Token, typename... Values>
auto async_complete_with(zokio::io_context& ctx, Token&& token, Values... values)
{
  return asio::async_initiate<Token, Signature>(
      [&ctx](auto handler, auto... v) {
        asio::post(ctx, [h = std::move(handler), v...]() mutable { std::move(h)(v...); });
      },
      token, values...);
}

zokio::future<void> wait_for(zokio::steady_timer& t, std::chrono::steady_clock::duration d)
{
  t.expires_after(d);
  return t.async_wait(zokio::use_future);
}

} // namespace

//------------------------------------------------------------------------------
// Compile section.

namespace compile {

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::io_context& ctx, zokio::steady_timer& t)
{
  auto r = co_await zokio::select(t.async_wait(zokio::use_future),
      async_complete_with<void(int)>(ctx, zokio::use_future, 1));
  static_assert(std::is_same_v<decltype(r), std::variant<std::monostate, int>>);
  auto w = co_await zokio::when_any(t.async_wait(zokio::use_future),
      async_complete_with<void(int)>(ctx, zokio::use_future, 1));
  static_assert(std::is_same_v<decltype(w), zokio::when_any_result<void, int>>);
}

[[maybe_unused]] void interface(zokio::io_context& ctx, zokio::steady_timer& t)
{
  auto f = zokio::when_any(t.async_wait(zokio::use_future),
      async_complete_with<void(int)>(ctx, zokio::use_future, 1),
      async_complete_with<void(int)>(ctx, zokio::use_future, 2));
  static_assert(std::is_same_v<decltype(f), zokio::future<zokio::when_any_result<void, int, int>>>);
  static_assert(std::is_same_v<zokio::select_result<void, int, int>,
      std::variant<std::monostate, int, int>>);
  auto g = zokio::select(zokio::timeout(t.async_wait(zokio::use_future), 1s),
      zokio::spawn(ctx, []() -> asio::awaitable<std::string> { co_return ""; }));
  static_assert(std::is_same_v<decltype(g), zokio::future<std::variant<std::monostate, std::string>>>);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(first_to_finish_wins)
{
  zokio::io_context ctx;
  zokio::steady_timer slow(ctx), fast(ctx);
  auto f = zokio::when_any(wait_for(slow, 1h),
      async_complete_with<void(int)>(ctx, zokio::use_future, 8), wait_for(fast, 1h));
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0); // the losers were cancelled
  auto r = f.get();
  BOOST_TEST(r.index == 1u);
  BOOST_TEST(!std::get<0>(r.results).valid());
  BOOST_TEST(std::get<1>(r.results).ready());
  BOOST_TEST(!std::get<2>(r.results).valid());
  BOOST_TEST(r.get<1>() == 8);
}

BOOST_AUTO_TEST_CASE(a_failed_winner_is_carried_not_thrown)
{
  zokio::io_context ctx;
  zokio::steady_timer slow(ctx);
  auto f = zokio::when_any(wait_for(slow, 1h),
      async_complete_with<void(error_code, int)>(ctx, zokio::use_future, error_code(asio::error::eof), 0));
  zokio_test::run_bounded(ctx);
  auto r = f.get();
  BOOST_TEST(r.index == 1u);
  try
  {
    r.get<1>();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::eof);
  }
}

BOOST_AUTO_TEST_CASE(a_ready_input_wins_at_once)
{
  zokio::io_context ctx;
  auto ready = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  zokio_test::run_bounded(ctx);
  zokio::steady_timer t(ctx);
  auto f = zokio::when_any(wait_for(t, 1h), std::move(ready));
  ctx.restart();
  zokio_test::run_bounded(ctx); // lets the cancelled wait finish
  auto r = f.get();
  BOOST_TEST(r.index == 1u);
  BOOST_TEST(r.get<1>() == 1);
}

BOOST_AUTO_TEST_CASE(kernel_operation_against_a_timer)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  std::size_t index = 99;
  asio::post(ctx, [&] {
    zokio::when_any(wait_for(t, 1h), zokio::detail::async_nop(ctx.get_executor(), zokio::use_future))
      .then([&](std::exception_ptr e, zokio::when_any_result<void, void> r) {
        BOOST_TEST(!e);
        index = r.index;
      });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(index == 1u);
}

BOOST_AUTO_TEST_CASE(cancel_reports_the_first_to_finish)
{
  zokio::io_context ctx;
  zokio::steady_timer a(ctx), b(ctx);
  auto f = zokio::when_any(wait_for(a, 1h), wait_for(b, 1h));
  f.cancel();
  zokio_test::run_bounded(ctx);
  auto r = f.get();
  BOOST_TEST(r.index < 2u);
  if (r.index == 0)
    BOOST_CHECK_THROW(r.get<0>(), boost::system::system_error);
  else
    BOOST_CHECK_THROW(r.get<1>(), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(select_in_a_coroutine)
{
  zokio::io_context ctx;
  int got = 0;
  bool timer_won = false;
  bool threw = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer stop(ctx);
    auto r = co_await zokio::select(wait_for(stop, 1h),
        async_complete_with<void(int)>(ctx, zokio::use_future, 3));
    if (r.index() == 1)
      got = std::get<1>(r);
    auto s = co_await zokio::select(wait_for(stop, 1ms),
        zokio::spawn(ctx, [&]() -> asio::awaitable<int> {
          zokio::steady_timer t(ctx, 1h);
          co_await t.async_wait(zokio::use_future);
          co_return 4;
        }));
    timer_won = s.index() == 0;
    try
    {
      co_await zokio::select(wait_for(stop, 1h),
          async_complete_with<void(error_code)>(ctx, zokio::use_future, error_code(asio::error::eof)));
    }
    catch (const boost::system::system_error& e)
    {
      threw = e.code() == asio::error::eof;
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(got == 3);
  BOOST_TEST(timer_won);
  BOOST_TEST(threw);
}

BOOST_AUTO_TEST_CASE(inputs_on_several_threads)
{
  zokio::io_context c1, c2;
  auto g1 = asio::make_work_guard(c1);
  auto g2 = asio::make_work_guard(c2);
  std::thread t1([&] { c1.run(); });
  std::thread t2([&] { c2.run(); });
  zokio::steady_timer t(c2);
  for (int i = 0; i < 300; ++i)
  {
    auto f = zokio::when_any(async_complete_with<void(int)>(c1, zokio::use_future, i),
        zokio::detail::async_nop(c2.get_executor(), zokio::use_future));
    auto r = f.get();
    BOOST_TEST(r.index < 2u);
    auto s = zokio::select(async_complete_with<void(int)>(c1, zokio::use_future, i),
        async_complete_with<void(int)>(c2, zokio::use_future, i));
    auto v = s.get();
    BOOST_TEST((v.index() == 0 ? std::get<0>(v) : std::get<1>(v)) == i);
  }
  g1.reset();
  g2.reset();
  t1.join();
  t2.join();
}

BOOST_AUTO_TEST_CASE(when_any_of_timeouts)
{
  zokio::io_context ctx;
  zokio::steady_timer a(ctx), b(ctx);
  auto f = zokio::when_any(zokio::timeout(wait_for(a, 1h), 2ms), zokio::timeout(wait_for(b, 1h), 1h));
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  auto r = f.get();
  BOOST_TEST(r.index == 0u);
  try
  {
    r.get<0>();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::timed_out);
  }
}
