// Tests of zokio::basic_waitable_timer (steady_timer, system_timer).
#include <zokio/timer/steady_timer.hpp>
#include <zokio/timer/system_timer.hpp>
#include <zokio/timer/high_resolution_timer.hpp>
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE timer
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <future>
#include <random>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

//------------------------------------------------------------------------------
// Compile section: every async_wait form and completion token.

namespace compile {

// A move-only handler archetype.
struct move_only_handler
{
  move_only_handler() = default;
  move_only_handler(move_only_handler&&) = default;
  move_only_handler(const move_only_handler&) = delete;
  void operator()(error_code) {}
};

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::steady_timer& t)
{
  co_await t.async_wait(asio::use_awaitable);
  auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  (void)ec;
  error_code ec2;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec2));
  co_await t.async_wait(asio::deferred);
  using namespace asio::experimental::awaitable_operators;
  co_await (t.async_wait(asio::use_awaitable) || t.async_wait(asio::use_awaitable));
}

[[maybe_unused]] void interface(zokio::io_context& ctx)
{
  zokio::steady_timer t1(ctx);
  zokio::steady_timer t2(ctx.get_executor());
  zokio::steady_timer t3(ctx, 1s);
  zokio::steady_timer t4(ctx, std::chrono::steady_clock::now());
  zokio::system_timer t5(ctx, 1s);
  zokio::high_resolution_timer t6(ctx, 1s);
  zokio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
      zokio::io_context::executor_type> t7(ctx);
  using rebound = zokio::steady_timer::rebind_executor<zokio::io_context::executor_type>::other;
  rebound t8(ctx);
  zokio::steady_timer t9(std::move(t8)); // converting move
  t1.async_wait(move_only_handler());
  t1.async_wait([](error_code) {});
  std::future<void> f = t1.async_wait(asio::use_future);
  auto d = t1.async_wait(asio::deferred);
  std::move(d)([](error_code) {});
  t1.async_wait(asio::as_tuple([](std::tuple<error_code>) {}));
  t1.async_wait(asio::detached);
  std::size_t n = t1.cancel() + t1.cancel_one() + t1.expires_after(1s)
      + t1.expires_at(std::chrono::steady_clock::now());
  (void)t1.expiry();
  (void)t1.get_executor();
  t7.async_wait([](error_code) {});
#if !defined(BOOST_ASIO_NO_DEPRECATED)
  error_code ec;
  n += t1.cancel(ec) + t1.cancel_one(ec) + t1.expires_from_now(1s) + t1.expires_from_now(1s, ec)
      + t1.expires_at(std::chrono::steady_clock::now(), ec);
  (void)t1.expires_at();
  (void)t1.expires_from_now();
#endif
  (void)n;
  asio::co_spawn(ctx, coroutine(t1), asio::detached);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(wait_completes_after_expiry_never_before)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  for (auto d : {1ms, 5ms, 20ms})
  {
    auto start = std::chrono::steady_clock::now();
    t.expires_after(d);
    auto expiry = t.expiry();
    std::chrono::steady_clock::time_point fired;
    error_code result = asio::error::would_block;
    t.async_wait([&](error_code ec) {
      result = ec;
      fired = std::chrono::steady_clock::now();
    });
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!result);
    BOOST_TEST((fired >= expiry));
    BOOST_TEST((fired - start >= d));
  }
}

BOOST_AUTO_TEST_CASE(handler_never_runs_inside_async_wait)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  t.expires_at(std::chrono::steady_clock::time_point::min()); // long expired
  bool ran = false;
  asio::post(ctx, [&] {
    t.async_wait([&](error_code ec) {
      BOOST_TEST(!ec);
      ran = true;
    });
    BOOST_TEST(!ran);
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(timers_fire_in_expiry_order)
{
  zokio::io_context ctx;
  constexpr int n = 2000;
  std::vector<std::unique_ptr<zokio::steady_timer>> timers;
  std::vector<int> order;
  std::vector<int> delays(n);
  std::mt19937 rng(42);
  for (int i = 0; i < n; ++i)
    delays[i] = static_cast<int>(rng() % 50000); // microseconds
  auto base = std::chrono::steady_clock::now() + 5ms;
  std::vector<std::pair<std::chrono::steady_clock::time_point, int>> expected;
  for (int i = 0; i < n; ++i)
  {
    auto t = std::make_unique<zokio::steady_timer>(ctx, base + std::chrono::microseconds(delays[i]));
    expected.emplace_back(t->expiry(), i);
    t->async_wait([&order, i](error_code ec) {
      BOOST_TEST(!ec);
      order.push_back(i);
    });
    timers.push_back(std::move(t));
  }
  zokio_test::run_bounded(ctx);
  BOOST_TEST(order.size() == static_cast<std::size_t>(n));
  // Fired in non-decreasing expiry order.
  for (std::size_t k = 1; k < order.size(); ++k)
    BOOST_TEST((timers[order[k - 1]]->expiry() <= timers[order[k]]->expiry()));
}

BOOST_AUTO_TEST_CASE(several_waits_on_one_timer_complete_in_start_order)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 5ms);
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    t.async_wait([&order, i](error_code ec) {
      BOOST_TEST(!ec);
      order.push_back(i);
    });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cancel_returns_count_and_aborts_waits)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 10s);
  int aborted = 0;
  for (int i = 0; i < 3; ++i)
    t.async_wait([&](error_code ec) {
      if (ec == asio::error::operation_aborted)
        ++aborted;
    });
  BOOST_TEST(t.cancel() == 3u);
  BOOST_TEST(t.cancel() == 0u);
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(aborted == 3);
  BOOST_TEST(zokio_test::ms_since(t0) < 5000.0);
}

BOOST_AUTO_TEST_CASE(cancel_one_cancels_the_oldest)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 20ms);
  std::vector<std::pair<int, error_code>> results;
  for (int i = 0; i < 3; ++i)
    t.async_wait([&results, i](error_code ec) { results.emplace_back(i, ec); });
  BOOST_TEST(t.cancel_one() == 1u);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(results.size() == 3u);
  BOOST_TEST(results[0].first == 0);
  BOOST_TEST((results[0].second == asio::error::operation_aborted));
  BOOST_TEST(!results[1].second);
  BOOST_TEST(!results[2].second);
}

BOOST_AUTO_TEST_CASE(expires_at_and_after_cancel_pending_waits)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 10s);
  error_code first;
  t.async_wait([&](error_code ec) { first = ec; });
  BOOST_TEST(t.expires_after(1ms) == 1u);
  error_code second = asio::error::would_block;
  t.async_wait([&](error_code ec) { second = ec; });
  BOOST_TEST(t.expires_at(t.expiry()) == 1u);
  error_code third = asio::error::would_block;
  t.async_wait([&](error_code ec) { third = ec; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST((first == asio::error::operation_aborted));
  BOOST_TEST((second == asio::error::operation_aborted));
  BOOST_TEST(!third);
}

BOOST_AUTO_TEST_CASE(destroying_a_timer_aborts_its_waits)
{
  zokio::io_context ctx;
  error_code result;
  {
    zokio::steady_timer t(ctx, 10s);
    t.async_wait([&](error_code ec) { result = ec; });
  }
  zokio_test::run_bounded(ctx);
  BOOST_TEST((result == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(moved_timer_keeps_its_waits)
{
  zokio::io_context ctx;
  zokio::steady_timer a(ctx, 5ms);
  error_code result = asio::error::would_block;
  a.async_wait([&](error_code ec) { result = ec; });
  zokio::steady_timer b(std::move(a));
  zokio::steady_timer c(ctx);
  c = std::move(b);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!result);
  // The moved-to timer can still be cancelled.
  ctx.restart();
  c.expires_after(10s);
  c.async_wait([&](error_code ec) { result = ec; });
  BOOST_TEST(c.cancel() == 1u);
  zokio_test::run_bounded(ctx);
  BOOST_TEST((result == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(cancel_from_another_thread)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 30s);
  error_code result;
  t.async_wait([&](error_code ec) { result = ec; });
  std::size_t cancelled = 0;
  std::thread canceller([&] {
    std::this_thread::sleep_for(20ms);
    cancelled = t.cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  canceller.join();
  BOOST_TEST(cancelled == 1u);
  BOOST_TEST((result == asio::error::operation_aborted));
  BOOST_TEST(zokio_test::ms_since(t0) < 5000.0);
}

BOOST_AUTO_TEST_CASE(earlier_timer_armed_from_another_thread_shortens_the_sleep)
{
  zokio::io_context ctx;
  zokio::steady_timer far(ctx, 30s);
  far.async_wait([](error_code) {});
  zokio::steady_timer near(ctx);
  std::chrono::steady_clock::time_point fired;
  std::thread other([&] {
    std::this_thread::sleep_for(20ms); // the loop is asleep until `far` by now
    near.expires_after(10ms);
    near.async_wait([&](error_code ec) {
      BOOST_TEST(!ec);
      fired = std::chrono::steady_clock::now();
      far.cancel();
    });
  });
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  other.join();
  BOOST_TEST((fired - t0 < 5s));
}

BOOST_AUTO_TEST_CASE(per_operation_cancellation_every_type)
{
  using asio::cancellation_type;
  for (auto type : {cancellation_type::terminal, cancellation_type::partial, cancellation_type::total})
  {
    zokio::io_context ctx;
    zokio::steady_timer t(ctx, 30s);
    asio::cancellation_signal signal;
    error_code result;
    t.async_wait(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) { result = ec; }));
    asio::post(ctx, [&] { signal.emit(type); });
    zokio_test::run_bounded(ctx);
    BOOST_TEST((result == asio::error::operation_aborted));
  }
}

BOOST_AUTO_TEST_CASE(per_operation_cancellation_leaves_other_waits)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 10ms);
  asio::cancellation_signal signal;
  error_code a = asio::error::would_block, b = asio::error::would_block;
  t.async_wait([&](error_code ec) { a = ec; });
  t.async_wait(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) { b = ec; }));
  signal.emit(asio::cancellation_type::terminal);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!a);
  BOOST_TEST((b == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(awaitable_operators_cancel_the_loser)
{
  zokio::io_context ctx;
  zokio::steady_timer fast(ctx, 5ms);
  zokio::steady_timer slow(ctx, 30s);
  std::size_t winner = 99;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto r = co_await (fast.async_wait(asio::use_awaitable) || slow.async_wait(asio::use_awaitable));
    winner = r.index();
  }, asio::detached);
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(winner == 0u);
  BOOST_TEST(zokio_test::ms_since(t0) < 5000.0);
}

BOOST_AUTO_TEST_CASE(every_completion_token)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx);
  int done = 0;

  t.expires_after(1ms);
  t.async_wait([&](error_code ec) { done += !ec; });
  zokio_test::run_bounded(ctx);

  t.expires_after(1ms);
  auto d = t.async_wait(asio::deferred);
  std::move(d)([&](error_code ec) { done += !ec; });
  ctx.restart();
  zokio_test::run_bounded(ctx);

  t.expires_after(1ms);
  t.async_wait(asio::as_tuple([&](std::tuple<error_code> r) { done += !std::get<0>(r); }));
  ctx.restart();
  zokio_test::run_bounded(ctx);

  t.expires_after(1ms);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    co_await t.async_wait(asio::use_awaitable);
    ++done;
    t.expires_after(30s);
    error_code ec;
    asio::post(ctx, [&] { t.cancel(); });
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    done += ec == asio::error::operation_aborted;
    t.expires_after(1ms);
    auto [ec2] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    done += !ec2;
  }, asio::detached);
  ctx.restart();
  zokio_test::run_bounded(ctx);

  // use_future, waited on from another thread while this one runs.
  t.expires_after(1ms);
  std::future<void> f = t.async_wait(asio::use_future);
  std::thread waiter([&] {
    f.get();
    ++done;
  });
  ctx.restart();
  zokio_test::run_bounded(ctx);
  waiter.join();

  BOOST_TEST(done == 7);
}

BOOST_AUTO_TEST_CASE(handler_bound_to_a_strand_runs_on_it)
{
  zokio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  zokio::steady_timer t(ctx, 1ms);
  bool on_strand = false;
  t.async_wait(asio::bind_executor(strand, [&](error_code) { on_strand = strand.running_in_this_thread(); }));
  zokio_test::run_bounded(ctx);
  BOOST_TEST(on_strand);
}

// A timer whose I/O executor is a strand (of an io_context or of a pool, held
// directly or in an any_io_executor) waits on the strand's context and runs
// its handler on the strand.
BOOST_AUTO_TEST_CASE(timer_on_a_strand_executor)
{
  zokio::io_context ctx;
  auto strand = asio::make_strand(ctx.get_executor());
  zokio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
      decltype(strand)> t(strand, 1ms);
  bool on_strand = false;
  t.async_wait([&](error_code ec) {
    BOOST_TEST(!ec);
    on_strand = strand.running_in_this_thread();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(on_strand);
}

BOOST_AUTO_TEST_CASE(timer_on_a_strand_of_the_pool)
{
  zokio::thread_pool pool(2);
  auto strand = asio::make_strand(pool.get_executor());
  zokio::steady_timer t(asio::any_io_executor(strand), 1ms);
  std::promise<bool> on_strand;
  t.async_wait([&](error_code ec) { on_strand.set_value(!ec && strand.running_in_this_thread()); });
  auto f = on_strand.get_future();
  BOOST_TEST((f.wait_for(10s) == std::future_status::ready));
  BOOST_TEST(f.get());
  pool.join();
}

BOOST_AUTO_TEST_CASE(system_timer_fires)
{
  zokio::io_context ctx;
  zokio::system_timer t(ctx, 5ms);
  auto expiry = t.expiry();
  std::chrono::system_clock::time_point fired;
  t.async_wait([&](error_code ec) {
    BOOST_TEST(!ec);
    fired = std::chrono::system_clock::now();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST((fired >= expiry));
}

BOOST_AUTO_TEST_CASE(synchronous_wait)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 10ms);
  auto t0 = std::chrono::steady_clock::now();
  t.wait();
  BOOST_TEST(zokio_test::ms_since(t0) >= 10.0);
  error_code ec = asio::error::would_block;
  t.wait(ec);
  BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(non_zokio_executor_is_refused)
{
  asio::io_context actx;
  asio::any_io_executor ex = actx.get_executor();
  try
  {
    zokio::steady_timer t(ex);
    BOOST_FAIL("constructing a zokio timer on an Asio executor must throw");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST((e.code() == zokio::error::not_a_zokio_executor));
  }
}

BOOST_AUTO_TEST_CASE(one_hundred_thousand_timers)
{
  zokio::io_context ctx;
  constexpr int n = 100000;
  std::vector<zokio::steady_timer> timers;
  timers.reserve(n);
  int fired = 0;
  auto base = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
  {
    timers.emplace_back(ctx, base + std::chrono::microseconds(i % 20000));
    timers.back().async_wait([&](error_code ec) { fired += !ec; });
  }
  zokio_test::run_bounded(ctx);
  BOOST_TEST(fired == n);
  BOOST_TEST(ctx.statistics().timers_fired == static_cast<std::uint64_t>(n));
}
