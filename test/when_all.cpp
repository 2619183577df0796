// Tests of zokio::when_all.
#include <zokio/when_all.hpp>

#define BOOST_TEST_MODULE when_all
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>
#include <zokio/spawn.hpp>
#include <zokio/timeout.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/when_any.hpp>

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

[[maybe_unused]] void interface(zokio::io_context& ctx, zokio::steady_timer& t)
{
  auto f = zokio::when_all(t.async_wait(zokio::use_future),
      async_complete_with<void(int)>(ctx, zokio::use_future, 1),
      async_complete_with<void(error_code, std::string)>(ctx, zokio::use_future, error_code(), ""));
  static_assert(std::is_same_v<decltype(f),
      zokio::future<std::tuple<std::monostate, int, std::string>>>);
  static_assert(std::is_same_v<zokio::when_all_result<void, int>, std::tuple<std::monostate, int>>);
  auto g = zokio::when_all(std::move(f), zokio::when_all(t.async_wait(zokio::use_future)));
  static_assert(std::is_same_v<decltype(g), zokio::future<std::tuple<
      std::tuple<std::monostate, int, std::string>, std::tuple<std::monostate>>>>);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(all_results_in_order)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  auto f = zokio::when_all(wait_for(t, 2ms),
      async_complete_with<void(int)>(ctx, zokio::use_future, 7),
      zokio::detail::async_nop(ctx.get_executor(), zokio::use_future),
      async_complete_with<void(error_code, std::string)>(ctx, zokio::use_future, error_code(), "s"));
  BOOST_TEST(!f.ready());
  zokio_test::run_bounded(ctx);
  BOOST_TEST(f.ready());
  auto [a, b, c, d] = f.get();
  (void)a;
  (void)c;
  BOOST_TEST(b == 7);
  BOOST_TEST(d == "s");
}

BOOST_AUTO_TEST_CASE(inputs_already_ready)
{
  zokio::io_context ctx;
  auto x = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  auto y = async_complete_with<void(int)>(ctx, zokio::use_future, 2);
  zokio_test::run_bounded(ctx);
  auto f = zokio::when_all(std::move(x), std::move(y));
  BOOST_TEST(f.ready());
  BOOST_TEST((f.get() == std::make_tuple(1, 2)));
}

BOOST_AUTO_TEST_CASE(first_failure_cancels_the_others)
{
  zokio::io_context ctx;
  zokio::steady_timer slow(ctx);
  auto f = zokio::when_all(wait_for(slow, 1h),
      async_complete_with<void(error_code, int)>(
          ctx, zokio::use_future, error_code(asio::error::connection_refused), 0));
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  try
  {
    f.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::connection_refused);
  }
}

BOOST_AUTO_TEST_CASE(exceptions_of_spawned_coroutines)
{
  zokio::io_context ctx;
  auto f = zokio::when_all(zokio::spawn(ctx, []() -> asio::awaitable<int> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::invalid_argument("bad");
  }), async_complete_with<void(int)>(ctx, zokio::use_future, 1));
  zokio_test::run_bounded(ctx);
  BOOST_CHECK_THROW(f.get(), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(empty_input)
{
  zokio::io_context ctx;
  auto f = zokio::when_all(zokio::future<int>(), async_complete_with<void(int)>(ctx, zokio::use_future, 1));
  zokio_test::run_bounded(ctx);
  BOOST_CHECK_THROW(f.get(), std::future_error);
}

BOOST_AUTO_TEST_CASE(cancel_cancels_every_input)
{
  zokio::io_context ctx;
  zokio::steady_timer a(ctx), b(ctx);
  auto f = zokio::when_all(wait_for(a, 1h), wait_for(b, 1h));
  f.cancel();
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  BOOST_CHECK_THROW(f.get(), boost::system::system_error);

  // Dropped unfinished.
  ctx.restart();
  {
    auto g = zokio::when_all(wait_for(a, 1h), wait_for(b, 1h));
  }
  t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
}

BOOST_AUTO_TEST_CASE(awaited_in_a_coroutine)
{
  zokio::io_context ctx;
  int sum = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(ctx);
    for (int i = 0; i < 100; ++i)
    {
      auto [x, y, z] = co_await zokio::when_all(
          async_complete_with<void(int)>(ctx, zokio::use_future, i),
          zokio::detail::async_nop(ctx.get_executor(), zokio::use_future),
          wait_for(t, 0ns));
      (void)y;
      (void)z;
      sum += x;
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(sum == 4950);
}

BOOST_AUTO_TEST_CASE(inputs_on_several_threads)
{
  // Inputs completed by two contexts on two threads; waited on a third.
  zokio::io_context c1, c2;
  auto g1 = asio::make_work_guard(c1);
  auto g2 = asio::make_work_guard(c2);
  std::thread t1([&] { c1.run(); });
  std::thread t2([&] { c2.run(); });
  for (int i = 0; i < 500; ++i)
  {
    auto f = zokio::when_all(async_complete_with<void(int)>(c1, zokio::use_future, i),
        async_complete_with<void(int)>(c2, zokio::use_future, -i),
        zokio::detail::async_nop(c1.get_executor(), zokio::use_future));
    auto [a, b, c] = f.get();
    (void)c;
    BOOST_TEST(a + b == 0);
  }
  g1.reset();
  g2.reset();
  t1.join();
  t2.join();
}

BOOST_AUTO_TEST_CASE(nested_composition)
{
  zokio::io_context ctx;
  zokio::steady_timer a(ctx), b(ctx), c(ctx);
  // A timeout of a when_all that finishes in time, and one that does not.
  auto in_time = zokio::timeout(zokio::when_all(wait_for(a, 1ms),
      async_complete_with<void(int)>(ctx, zokio::use_future, 3)), 10s);
  auto too_late = zokio::timeout(zokio::when_all(wait_for(b, 1h),
      async_complete_with<void(int)>(ctx, zokio::use_future, 4)), 5ms);
  // A when_all of when_any results.
  zokio::steady_timer d(ctx), e(ctx);
  auto both = zokio::when_all(zokio::when_any(wait_for(c, 1ms), wait_for(d, 1h)),
      zokio::when_any(wait_for(e, 1h), async_complete_with<void(int)>(ctx, zokio::use_future, 5)));
  zokio_test::run_bounded(ctx);
  BOOST_TEST(std::get<1>(in_time.get()) == 3);
  try
  {
    too_late.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& ex)
  {
    BOOST_TEST(ex.code() == asio::error::timed_out);
  }
  auto [first, second] = both.get();
  BOOST_TEST(first.index == 0u);
  BOOST_TEST(second.index == 1u);
  BOOST_TEST(second.get<1>() == 5);
}
