// Tests of zokio::future, zokio::spawn and the combinators on a
// zokio::thread_pool: completions run on the pool's workers (any of them,
// after stealing) while the test thread, outside the pool, waits; a worker
// that waits for its own pool is refused.
#include <zokio/future.hpp>

#define BOOST_TEST_MODULE future_thread_pool
#include <boost/test/unit_test.hpp>

#include <zokio/spawn.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timeout.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/when_all.hpp>
#include <zokio/when_any.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0)
{
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Completes with value on the pool, from a posted handler (so on a worker).
template <typename Token>
auto async_value(zokio::thread_pool& pool, int value, Token&& token)
{
  return asio::async_initiate<Token, void(error_code, int)>(
      [&pool](auto handler, int v) {
        asio::post(pool, [h = std::move(handler), v]() mutable { std::move(h)(error_code(), v); });
      },
      token, value);
}

zokio::future<void> wait_for(zokio::steady_timer& t, std::chrono::steady_clock::duration d)
{
  t.expires_after(d);
  return t.async_wait(zokio::use_future);
}

// Expects f to fail with a system_error carrying ec.
template <typename Future>
void expect_error(Future&& f, error_code ec)
{
  try
  {
    f.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == ec);
  }
}

// Waits an hour on a timer of the pool; returns -1 if cancelled.
asio::awaitable<int> sleeper(zokio::thread_pool& pool, std::atomic<bool>* started = nullptr)
{
  zokio::steady_timer t(pool, 1h);
  if (started)
    started->store(true);
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

} // namespace

//------------------------------------------------------------------------------
// Completion on a worker, waiting elsewhere.

BOOST_AUTO_TEST_CASE(values_completed_by_workers_reach_an_outside_thread)
{
  zokio::thread_pool pool(2);
  for (int i = 0; i < 500; ++i)
  {
    zokio::future<int> f = async_value(pool, i, zokio::use_future);
    BOOST_TEST(f.get() == i);
    asio::post(pool, zokio::use_future).get();
  }
  zokio::steady_timer t(pool);
  wait_for(t, 1ms).get();
  wait_for(t, 0ms).get();
  pool.join();
}

BOOST_AUTO_TEST_CASE(several_outside_threads_wait_at_once)
{
  // Four threads each initiate and wait; the two workers complete. Under
  // ThreadSanitizer this checks the state's publication and wake-up.
  zokio::thread_pool pool(2);
  std::atomic<long> sum{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < 4; ++w)
  {
    waiters.emplace_back([&, w] {
      zokio::steady_timer t(pool);
      for (int i = 0; i < 200; ++i)
      {
        auto f = async_value(pool, w * 1000 + i, zokio::use_future);
        auto g = wait_for(t, 0ms);
        if (i % 2)
          std::this_thread::yield(); // let some finish before get()
        sum += f.get();
        g.get();
      }
    });
  }
  for (auto& t : waiters)
    t.join();
  long expected = 0;
  for (int w = 0; w < 4; ++w)
    for (int i = 0; i < 200; ++i)
      expected += w * 1000 + i;
  BOOST_TEST(sum.load() == expected);
  pool.join();
}

BOOST_AUTO_TEST_CASE(then_runs_on_a_worker)
{
  zokio::thread_pool pool(2);
  struct outcome
  {
    bool failed;
    int value;
    std::thread::id thread;
  };
  std::promise<outcome> ran;
  auto f = async_value(pool, 7, zokio::use_future);
  f.then([&](std::exception_ptr e, int v) {
    ran.set_value(outcome{bool(e), v, std::this_thread::get_id()});
  });
  // A plain callback names no executor: it runs on the pool that completes
  // the operation, never on the thread that attached it.
  outcome o = ran.get_future().get();
  BOOST_TEST(!o.failed);
  BOOST_TEST(o.value == 7);
  BOOST_TEST((o.thread != std::this_thread::get_id()));
  pool.join();
}

BOOST_AUTO_TEST_CASE(co_await_on_a_worker_of_a_future_completed_by_any_worker)
{
  zokio::thread_pool pool(2);
  auto h = zokio::spawn(pool, [&]() -> asio::awaitable<long> {
    long total = 0;
    zokio::steady_timer t(pool);
    for (int i = 0; i < 300; ++i)
    {
      total += co_await async_value(pool, i, zokio::use_future);
      co_await wait_for(t, 0ms);
      // A future made here and completed by a posted handler that another
      // worker may steal.
      auto pending = asio::post(pool, zokio::use_future);
      co_await pending;
    }
    co_return total;
  });
  BOOST_TEST(h.get() == 299L * 300 / 2);
  pool.join();
}

//------------------------------------------------------------------------------
// get() on a worker of the pool that must produce the result.

BOOST_AUTO_TEST_CASE(get_on_a_worker_is_refused)
{
  zokio::thread_pool pool(2);
  std::promise<error_code> refused_future, refused_handle;
  asio::post(pool, [&] {
    // An hour: the wait is surely unfinished when get() is called (a short
    // one could expire first on a loaded machine, and get() would return).
    // Dropping f at the end of this handler cancels it.
    zokio::steady_timer t(pool, 1h);
    zokio::future<void> f = t.async_wait(zokio::use_future);
    try
    {
      f.get();
      refused_future.set_value(error_code());
    }
    catch (const boost::system::system_error& e)
    {
      refused_future.set_value(e.code());
    }
    auto h = zokio::spawn(pool, sleeper(pool));
    try
    {
      h.get();
      refused_handle.set_value(error_code());
    }
    catch (const boost::system::system_error& e)
    {
      refused_handle.set_value(e.code());
    }
    h.abort();
  });
  BOOST_TEST(refused_future.get_future().get() == zokio::error::would_deadlock);
  BOOST_TEST(refused_handle.get_future().get() == zokio::error::would_deadlock);
  pool.join();
}

//------------------------------------------------------------------------------
// Cancellation.

BOOST_AUTO_TEST_CASE(cancel_before_and_after_submission)
{
  zokio::thread_pool pool(2);
  zokio::steady_timer t(pool);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i)
  {
    // Before: cancelled at once, racing the worker that starts the wait.
    auto f = wait_for(t, 1h);
    f.cancel();
    expect_error(f, asio::error::operation_aborted);
  }
  // After: the wait is surely registered with a worker first.
  auto g = wait_for(t, 1h);
  std::this_thread::sleep_for(5ms);
  BOOST_TEST(!g.ready());
  g.cancel();
  expect_error(g, asio::error::operation_aborted);
  // Dropped while pending: cancelled, so join() does not wait an hour.
  {
    auto dropped = wait_for(t, 1h);
  }
  pool.join();
  BOOST_TEST(ms_since(t0) < 5000.0);
}

BOOST_AUTO_TEST_CASE(abort_a_coroutine_on_the_pool)
{
  zokio::thread_pool pool(2);
  auto t0 = std::chrono::steady_clock::now();
  auto early = zokio::spawn(pool, sleeper(pool));
  early.abort(); // perhaps before the coroutine has started
  std::atomic<bool> started{false};
  auto late = zokio::spawn(pool, sleeper(pool, &started));
  while (!started.load())
    std::this_thread::sleep_for(1ms);
  late.abort(); // the coroutine runs, or is about to wait
  // The coroutine catches the cancellation of its wait, or (aborted before
  // it ever awaited) its first co_await throws.
  try
  {
    BOOST_TEST(early.get() == -1);
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
  BOOST_TEST(late.get() == -1);
  pool.join();
  BOOST_TEST(ms_since(t0) < 5000.0);
}

//------------------------------------------------------------------------------
// Exceptions through join handles, and composition.

BOOST_AUTO_TEST_CASE(exceptions_through_join_handles)
{
  zokio::thread_pool pool(2);
  auto h = zokio::spawn(pool, [&]() -> asio::awaitable<int> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("from a worker");
  });
  try
  {
    h.get();
    BOOST_FAIL("no exception");
  }
  catch (const std::runtime_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "from a worker");
  }
  // Through a coroutine awaiting another's handle, and through when_all.
  auto outer = zokio::spawn(pool, [&]() -> asio::awaitable<std::string> {
    auto inner = zokio::spawn(pool, [&]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      throw std::logic_error("inner");
    });
    try
    {
      co_await inner;
    }
    catch (const std::logic_error& e)
    {
      co_return e.what();
    }
    co_return "none";
  });
  BOOST_TEST(outer.get() == "inner");
  auto all = zokio::when_all(async_value(pool, 1, zokio::use_future),
      zokio::spawn(pool, [&]() -> asio::awaitable<int> {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        throw std::runtime_error("second");
      }));
  BOOST_CHECK_THROW(all.get(), std::runtime_error);
  pool.join();
}

BOOST_AUTO_TEST_CASE(nested_composition)
{
  zokio::thread_pool pool(2);
  zokio::steady_timer a(pool), b(pool), c(pool), d(pool);
  auto with_sleeper = zokio::timeout(zokio::when_all(wait_for(a, 1ms),
      async_value(pool, 3, zokio::use_future), zokio::spawn(pool, sleeper(pool))), 5ms);
  auto too_late = zokio::timeout(zokio::when_all(wait_for(b, 1h),
      async_value(pool, 4, zokio::use_future)), 2ms);
  auto first = zokio::when_any(zokio::timeout(wait_for(c, 1h), 2ms),
      zokio::timeout(wait_for(d, 1h), 1h));
  // The deadline of the first one cancels the when_all, which aborts the
  // spawned sleeper; the sleeper catches that and returns -1, so the
  // when_all succeeds after all (a timeout keeps a late success), and the
  // pool's join() below does not wait an hour.
  auto got = with_sleeper.get();
  BOOST_TEST(std::get<1>(got) == 3);
  BOOST_TEST(std::get<2>(got) == -1);
  expect_error(too_late, asio::error::timed_out);
  auto r = first.get();
  BOOST_TEST(r.index == 0u);
  BOOST_CHECK_THROW(r.get<0>(), boost::system::system_error);

  // select and a timeout inside a coroutine on the pool.
  auto h = zokio::spawn(pool, [&]() -> asio::awaitable<int> {
    zokio::steady_timer stop(pool);
    auto s = co_await zokio::select(wait_for(stop, 1h), async_value(pool, 5, zokio::use_future));
    int v = std::get<1>(s);
    v += std::get<0>(co_await zokio::timeout(
        zokio::when_all(async_value(pool, 1, zokio::use_future), wait_for(stop, 1ms)), 10s));
    co_return v;
  });
  BOOST_TEST(h.get() == 6);
  pool.join();
}

//------------------------------------------------------------------------------
// A cancelled read leaves the socket usable. This is Asio's own TCP socket
// constructed on the pool: its reactor is driven by the pool (the Asio
// bridge's poll, in one worker's ring), and its completions run on that
// worker, where the future is filled. The cancellations and the last read
// are posted to Asio's scheduler from other threads (a worker, the test
// thread), the case of detail_asio_bridge's
// asio_completions_posted_from_outside_while_the_bridge_polls.

BOOST_AUTO_TEST_CASE(cancelled_read_leaves_the_socket_usable)
{
  zokio::thread_pool pool(2);
  asio::ip::tcp::acceptor acceptor(pool, {asio::ip::address_v4::loopback(), 0});
  asio::ip::tcp::socket client(pool), server(pool);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);

  std::array<char, 16> buf{};
  auto pending = server.async_read_some(asio::buffer(buf), zokio::use_future);
  std::this_thread::sleep_for(2ms);
  BOOST_TEST(!pending.ready());
  pending.cancel();
  expect_error(pending, asio::error::operation_aborted);

  // Dropped unfinished: cancelled too. Dropped on a worker, where the
  // cancellation is emitted at once (from outside the pool it is carried to
  // a worker, and a read started meanwhile could queue behind the dropped
  // one and lose its data to it).
  std::promise<void> dropped_done;
  asio::post(pool, [&] {
    {
      auto dropped = server.async_read_some(asio::buffer(buf), zokio::use_future);
    }
    dropped_done.set_value();
  });
  dropped_done.get_future().get();

  asio::write(client, asio::buffer("hello", 5));
  auto got = server.async_read_some(asio::buffer(buf), zokio::use_future);
  std::size_t n = got.get();
  BOOST_TEST(n == 5u);
  BOOST_TEST(std::string(buf.data(), n) == "hello");

  // And the other way, awaited on a worker.
  auto echo = zokio::spawn(pool, [&]() -> asio::awaitable<std::size_t> {
    co_return co_await asio::async_write(server, asio::buffer(buf.data(), n), zokio::use_future);
  });
  BOOST_TEST(echo.get() == 5u);
  std::array<char, 16> back{};
  BOOST_TEST(client.read_some(asio::buffer(back)) == 5u);
  client.close();
  server.close();
  acceptor.close();
  pool.join();
}
