// Tests of zokio::future and the zokio::use_future token.
#include <zokio/future.hpp>

#define BOOST_TEST_MODULE future
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/statistics.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

// Completes with the given arguments, posted to ctx (an operation with any
// completion signature).
template <typename Signature, typename Token, typename... Values>
auto async_complete_with(zokio::io_context& ctx, Token&& token, Values... values)
{
  return asio::async_initiate<Token, Signature>(
      [&ctx](auto handler, auto... v) {
        asio::post(ctx, [h = std::move(handler), v...]() mutable { std::move(h)(v...); });
      },
      token, values...);
}

// Runs ctx on a thread of its own until the guard is reset.
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
// Compile section: the token with several operations and with as_tuple, and
// every form of then().

namespace compile {

struct move_only_handler
{
  move_only_handler() = default;
  move_only_handler(move_only_handler&&) = default;
  move_only_handler(const move_only_handler&) = delete;
  void operator()(std::exception_ptr, int) {}
};

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::io_context& ctx, zokio::steady_timer& t)
{
  co_await t.async_wait(zokio::use_future);
  zokio::future<void> f = t.async_wait(zokio::use_future);
  co_await f; // an lvalue
  auto [ec] = co_await t.async_wait(asio::as_tuple(zokio::use_future));
  (void)ec;
  int v = co_await async_complete_with<void(error_code, int)>(ctx, zokio::use_future, error_code(), 1);
  (void)v;
  zokio::future<int> g = async_complete_with<void(int)>(ctx, zokio::use_future, 2);
  int w = co_await g.then(asio::use_awaitable);
  (void)w;
  zokio::future<int> h = async_complete_with<void(int)>(ctx, zokio::use_future, 2);
  zokio::future<int> same = co_await h(asio::use_awaitable); // the ready future
  (void)same;
}

[[maybe_unused]] void interface(zokio::io_context& ctx, zokio::steady_timer& t)
{
  // Value types.
  static_assert(std::is_same_v<decltype(t.async_wait(zokio::use_future)), zokio::future<void>>);
  static_assert(std::is_same_v<decltype(t.async_wait(asio::as_tuple(zokio::use_future))),
      zokio::future<std::tuple<error_code>>>);
  static_assert(std::is_same_v<decltype(zokio::detail::async_nop(ctx.get_executor(), zokio::use_future)),
      zokio::future<void>>);
  static_assert(std::is_same_v<decltype(asio::post(ctx, zokio::use_future)), zokio::future<void>>);
  static_assert(std::is_same_v<decltype(asio::post(ctx.get_executor(), zokio::use_future)),
      zokio::future<void>>);
  static_assert(std::is_same_v<decltype(asio::dispatch(ctx, zokio::use_future)), zokio::future<void>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void()>(ctx, zokio::use_future)),
      zokio::future<void>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(std::exception_ptr)>(
      ctx, zokio::use_future, std::exception_ptr())), zokio::future<void>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(int)>(ctx, zokio::use_future, 1)),
      zokio::future<int>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(error_code, std::size_t)>(
      ctx, zokio::use_future, error_code(), std::size_t(1))), zokio::future<std::size_t>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(std::exception_ptr, int)>(
      ctx, zokio::use_future, std::exception_ptr(), 1)), zokio::future<int>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(error_code, int, std::string)>(
      ctx, zokio::use_future, error_code(), 1, std::string())),
      zokio::future<std::tuple<int, std::string>>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(int, std::string)>(
      ctx, zokio::use_future, 1, std::string())), zokio::future<std::tuple<int, std::string>>>);
  static_assert(std::is_same_v<decltype(async_complete_with<void(const error_code&, std::size_t)>(
      ctx, asio::as_tuple(zokio::use_future), error_code(), std::size_t(1))),
      zokio::future<std::tuple<error_code, std::size_t>>>);
  static_assert(std::is_same_v<decltype(asio::co_spawn(ctx, coroutine(ctx, t), zokio::use_future)),
      zokio::future<void>>);

  // Other forms of the token.
  zokio::future<void> a = t.async_wait(zokio::use_future_t<std::allocator<void>>());
  zokio::future<void> b = t.async_wait(zokio::use_future.rebind(std::allocator<int>()));
  error_code ec;
  zokio::future<void> c = t.async_wait(asio::redirect_error(zokio::use_future, ec));

  // then() and operator() with several tokens.
  zokio::future<int> f = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  f.then(move_only_handler());
  f.then([](std::exception_ptr, int) {});
  zokio::future<int> f2 = f.then(zokio::use_future);
  std::future<int> f3 = f2.then(asio::use_future);
  auto d = f.then(asio::deferred);
  std::move(d)([](std::exception_ptr, int) {});
  f.then(asio::detached);
  f.then(asio::bind_executor(ctx, [](std::exception_ptr, int) {}));
  zokio::future<void> v = t.async_wait(zokio::use_future);
  v.then([](std::exception_ptr) {});
  v([](zokio::future<void>) {});
  f([](zokio::future<int>) {});
  (void)f3;
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(empty_future)
{
  zokio::future<int> f;
  BOOST_TEST(!f.valid());
  BOOST_TEST(!f.ready());
  f.cancel();
  BOOST_CHECK_THROW(f.get(), std::future_error);
  BOOST_CHECK_THROW(f.wait(), std::future_error);

  // then() on an empty future delivers no_state to the handler.
  zokio::io_context ctx;
  bool called = false;
  asio::post(ctx, [&] {
    zokio::future<int> e;
    e.then([&](std::exception_ptr ex, int) {
      called = true;
      BOOST_CHECK_THROW(std::rethrow_exception(ex), std::future_error);
    });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(called);
}

BOOST_AUTO_TEST_CASE(get_after_run)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1ms);
  zokio::future<void> f = t.async_wait(zokio::use_future);
  BOOST_TEST(f.valid());
  BOOST_TEST(!f.ready());
  zokio_test::run_bounded(ctx);
  BOOST_TEST(f.ready());
  f.get();
  BOOST_TEST(!f.valid());
  BOOST_CHECK_THROW(f.get(), std::future_error);
}

BOOST_AUTO_TEST_CASE(values_follow_the_completion_signature)
{
  zokio::io_context ctx;
  auto a = async_complete_with<void(int)>(ctx, zokio::use_future, 7);
  auto b = async_complete_with<void(error_code, int)>(ctx, zokio::use_future, error_code(), 8);
  auto c = async_complete_with<void(error_code, int, std::string)>(
      ctx, zokio::use_future, error_code(), 9, std::string("nine"));
  auto d = async_complete_with<void(std::exception_ptr, int)>(
      ctx, zokio::use_future, std::exception_ptr(), 10);
  auto e = async_complete_with<void()>(ctx, zokio::use_future);
  auto g = async_complete_with<void(int, std::string)>(ctx, zokio::use_future, 11, std::string("x"));
  zokio_test::run_bounded(ctx);
  BOOST_TEST(a.get() == 7);
  BOOST_TEST(b.get() == 8);
  BOOST_TEST((c.get() == std::make_tuple(9, std::string("nine"))));
  BOOST_TEST(d.get() == 10);
  e.get();
  BOOST_TEST((g.get() == std::make_tuple(11, std::string("x"))));
}

BOOST_AUTO_TEST_CASE(errors_are_thrown)
{
  zokio::io_context ctx;
  auto a = async_complete_with<void(error_code, int)>(
      ctx, zokio::use_future, error_code(asio::error::connection_reset), 1);
  auto b = async_complete_with<void(std::exception_ptr)>(
      ctx, zokio::use_future, std::make_exception_ptr(std::logic_error("logic")));
  auto c = async_complete_with<void(error_code)>(
      ctx, zokio::use_future, error_code(asio::error::eof));
  zokio_test::run_bounded(ctx);
  try
  {
    a.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::connection_reset);
  }
  BOOST_CHECK_THROW(b.get(), std::logic_error);
  try
  {
    c.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::eof);
  }
}

BOOST_AUTO_TEST_CASE(as_tuple_keeps_the_error_code)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1h);
  auto f = t.async_wait(asio::as_tuple(zokio::use_future));
  auto g = async_complete_with<void(error_code, int)>(
      ctx, asio::as_tuple(zokio::use_future), error_code(asio::error::eof), 5);
  asio::post(ctx, [&] { t.cancel(); });
  zokio_test::run_bounded(ctx);
  auto [ec] = f.get();
  BOOST_TEST(ec == asio::error::operation_aborted);
  auto [ec2, n] = g.get();
  BOOST_TEST(ec2 == asio::error::eof);
  BOOST_TEST(n == 5);
}

BOOST_AUTO_TEST_CASE(post_and_dispatch)
{
  zokio::io_context ctx;
  auto a = asio::post(ctx, zokio::use_future);
  auto b = asio::post(ctx.get_executor(), zokio::use_future);
  auto c = asio::dispatch(ctx, zokio::use_future);
  auto d = asio::defer(ctx, zokio::use_future);
  zokio_test::run_bounded(ctx);
  a.get();
  b.get();
  c.get();
  d.get();
}

BOOST_AUTO_TEST_CASE(kernel_operation)
{
  zokio::io_context ctx;
  bool done = false;
  asio::post(ctx, [&] {
    auto f = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
    f.then([&](std::exception_ptr e) {
      BOOST_TEST(!e);
      done = true;
    });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(done);
  BOOST_TEST(ctx.statistics().completions >= 1u);
}

BOOST_AUTO_TEST_CASE(get_blocks_another_thread)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  zokio::steady_timer t(ctx, 5ms);
  auto t0 = std::chrono::steady_clock::now();
  zokio::future<void> f = t.async_wait(zokio::use_future);
  f.get();
  BOOST_TEST(zokio_test::ms_since(t0) >= 4.0);

  auto n = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
  n.wait();
  BOOST_TEST(n.ready());
  n.get();
}

BOOST_AUTO_TEST_CASE(get_on_the_context_thread_is_refused)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1h);
  bool refused = false;
  asio::post(ctx, [&] {
    zokio::future<void> f = t.async_wait(zokio::use_future);
    try
    {
      f.get();
    }
    catch (const boost::system::system_error& e)
    {
      refused = e.code() == zokio::error::would_deadlock;
    }
    BOOST_TEST(f.valid()); // still usable
    BOOST_CHECK_THROW(f.wait(), boost::system::system_error);
    f.cancel();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(refused);

  // A ready future is read on the context thread without blocking.
  bool read = false;
  asio::post(ctx, [&] {
    auto f = asio::post(ctx, zokio::use_future);
    asio::post(ctx, [&, f = std::move(f)]() mutable {
      BOOST_TEST(f.ready());
      f.get();
      read = true;
    });
  });
  ctx.restart();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(read);
}

BOOST_AUTO_TEST_CASE(completion_on_one_thread_wait_on_another)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  zokio::steady_timer t(ctx);
  constexpr int n = 2000;
  std::vector<zokio::future<int>> futures;
  for (int i = 0; i < n; ++i)
    futures.push_back(async_complete_with<void(int)>(ctx, zokio::use_future, i));
  long sum = 0;
  for (auto& f : futures)
    sum += f.get();
  BOOST_TEST(sum == long(n) * (n - 1) / 2);

  // Futures started on the context thread, awaited from this one.
  std::vector<zokio::future<void>> nops(n);
  asio::post(ctx, zokio::use_future).get();
  std::promise<void> started;
  asio::post(ctx, [&] {
    for (auto& f : nops)
      f = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
    started.set_value();
  });
  started.get_future().get();
  for (auto& f : nops)
    f.get();
}

BOOST_AUTO_TEST_CASE(co_await_in_awaitable)
{
  zokio::io_context ctx;
  int result = 0;
  bool threw = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(ctx, 1ms);
    co_await t.async_wait(zokio::use_future);
    zokio::future<int> f = async_complete_with<void(error_code, int)>(
        ctx, zokio::use_future, error_code(), 40);
    result = co_await f; // lvalue
    BOOST_TEST(!f.valid());
    result += co_await async_complete_with<void(int)>(ctx, zokio::use_future, 2);
    // Already ready: no suspension.
    auto r = asio::post(ctx, zokio::use_future);
    co_await asio::post(ctx, asio::use_awaitable);
    BOOST_TEST(r.ready());
    co_await r;
    try
    {
      co_await async_complete_with<void(error_code)>(
          ctx, zokio::use_future, error_code(asio::error::eof));
    }
    catch (const boost::system::system_error& e)
    {
      threw = e.code() == asio::error::eof;
    }
    co_await zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == 42);
  BOOST_TEST(threw);
}

BOOST_AUTO_TEST_CASE(co_await_from_another_context)
{
  // The future's operation runs on one context, the coroutine on another:
  // the coroutine's context is kept running while it waits. (coro is
  // declared first so that the thread that posts to it is joined before it
  // is destroyed.)
  zokio::io_context coro;
  zokio::io_context ops;
  context_thread runner(ops);
  bool done = false;
  asio::co_spawn(coro, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(ops, 5ms);
    co_await t.async_wait(zokio::use_future);
    BOOST_TEST(coro.get_executor().running_in_this_thread());
    co_await zokio::detail::async_nop(ops.get_executor(), zokio::use_future);
    BOOST_TEST(coro.get_executor().running_in_this_thread());
    done = true;
  }, asio::detached);
  zokio_test::run_bounded(coro);
  BOOST_TEST(done);
}

BOOST_AUTO_TEST_CASE(then_callbacks)
{
  zokio::io_context ctx;
  int value = 0;
  bool failed = false;
  bool inline_call = false;
  bool inside = false;
  asio::post(ctx, [&] {
    auto f = asio::post(ctx, zokio::use_future);
    // Ready by the time then() is called: the handler is still not run
    // inside then().
    asio::post(ctx, [&, f = std::move(f)]() mutable {
      inside = true;
      std::move(f).then([&](std::exception_ptr) { inline_call = inside; });
      inside = false;
    });
    async_complete_with<void(int)>(ctx, zokio::use_future, 5)
      .then([&](std::exception_ptr e, int v) {
        BOOST_TEST(!e);
        value = v;
      });
    async_complete_with<void(error_code, int)>(ctx, zokio::use_future, error_code(asio::error::eof), 5)
      .then([&](std::exception_ptr e, int v) {
        failed = e != nullptr && v == 0;
      });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(value == 5);
  BOOST_TEST(failed);
  BOOST_TEST(!inline_call);
}

BOOST_AUTO_TEST_CASE(then_with_tokens)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  // then(zokio::use_future): the same value again.
  zokio::future<int> f = async_complete_with<void(int)>(ctx, zokio::use_future, 3)
    .then(zokio::use_future);
  BOOST_TEST(f.get() == 3);
  // then(asio::use_future): a std::future.
  std::future<int> g = async_complete_with<void(int)>(ctx, zokio::use_future, 4)
    .then(asio::use_future);
  BOOST_TEST(g.get() == 4);
  // then(deferred), launched later.
  auto d = async_complete_with<void(int)>(ctx, zokio::use_future, 5).then(asio::deferred);
  std::future<int> h = std::move(d)(asio::use_future);
  BOOST_TEST(h.get() == 5);
  // operator(): the ready future itself.
  // (The handler runs on another thread: no Boost.Test checks in it.)
  std::promise<int> p;
  async_complete_with<void(int)>(ctx, zokio::use_future, 6)([&](zokio::future<int> r) {
    p.set_value(r.ready() ? r.get() : -1);
  });
  BOOST_TEST(p.get_future().get() == 6);
}

BOOST_AUTO_TEST_CASE(then_runs_on_the_handlers_executor)
{
  zokio::io_context other; // outlives the thread that posts to it
  zokio::io_context ops;
  context_thread runner(ops);
  bool on_other = false;
  auto strand = asio::make_strand(other);
  bool on_strand = false;
  zokio::steady_timer t(ops, 1ms);
  t.async_wait(zokio::use_future).then(asio::bind_executor(other, [&](std::exception_ptr) {
    on_other = other.get_executor().running_in_this_thread();
  }));
  async_complete_with<void(int)>(ops, zokio::use_future, 1)
    .then(asio::bind_executor(strand, [&](std::exception_ptr, int) {
      on_strand = strand.running_in_this_thread();
    }));
  zokio_test::run_bounded(other); // kept running by the handlers' work
  BOOST_TEST(on_other);
  BOOST_TEST(on_strand);
}

BOOST_AUTO_TEST_CASE(cancel_before_the_context_runs)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1h);
  zokio::future<void> f = t.async_wait(zokio::use_future);
  f.cancel(); // carried to the context
  f.cancel(); // no effect
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
  BOOST_TEST(f.ready());
  try
  {
    f.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
}

BOOST_AUTO_TEST_CASE(cancel_while_pending)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1h);
  zokio::future<void> f;
  error_code result;
  asio::post(ctx, [&] {
    f = t.async_wait(zokio::use_future);
    asio::post(ctx, [&] {
      f.cancel(); // on the context thread: emitted at once
      f.then([&](std::exception_ptr e) {
        try
        {
          std::rethrow_exception(e);
        }
        catch (const boost::system::system_error& se)
        {
          result = se.code();
        }
      });
    });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(cancel_from_another_thread)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  for (int i = 0; i < 200; ++i)
  {
    zokio::steady_timer t(ctx, 1h);
    zokio::future<void> f = t.async_wait(zokio::use_future);
    f.cancel();
    BOOST_CHECK_THROW(f.get(), boost::system::system_error);
    // Mixed with completions that may win the race.
    zokio::steady_timer u(ctx, std::chrono::microseconds(i % 7));
    zokio::future<void> g = u.async_wait(zokio::use_future);
    std::this_thread::yield();
    g.cancel();
    try
    {
      g.get();
    }
    catch (const boost::system::system_error& e)
    {
      BOOST_TEST(e.code() == asio::error::operation_aborted);
    }
  }
}

BOOST_AUTO_TEST_CASE(cancel_after_completion_has_no_effect)
{
  zokio::io_context ctx;
  auto f = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  zokio_test::run_bounded(ctx);
  f.cancel();
  BOOST_TEST(f.get() == 1);
}

BOOST_AUTO_TEST_CASE(dropping_an_unfinished_future_cancels_it)
{
  zokio::io_context ctx;
  zokio::steady_timer t(ctx, 1h);
  {
    zokio::future<void> f = t.async_wait(zokio::use_future);
  }
  asio::post(ctx, [&] {
    zokio::future<void> g = t.async_wait(zokio::use_future);
    zokio::future<void> h = t.async_wait(zokio::use_future);
    g = std::move(h); // the first wait is dropped, hence cancelled
    g.cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(zokio_test::ms_since(t0) < 1000.0);
}

BOOST_AUTO_TEST_CASE(kernel_operation_cancelled_or_dropped)
{
  // A NOP cannot be cancelled: it completes normally, and its operation
  // (in the ring until reaped) outlives a dropped future.
  zokio::io_context ctx;
  bool ok = false;
  asio::post(ctx, [&] {
    auto dropped = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
    (void)dropped;
  });
  asio::post(ctx, [&] {
    auto f = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
    f.cancel();
    f.then([&](std::exception_ptr e) { ok = !e; });
  });
  // Started from outside the context: handed over, then submitted.
  auto g = zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
  g.cancel();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ok);
  g.get();
  BOOST_TEST(ctx.statistics().completions >= 3u);
}

BOOST_AUTO_TEST_CASE(cancelled_read_of_an_asio_socket_leaves_it_usable)
{
  // Asio's TCP socket on a zokio context (Asio runs its reactor on a thread
  // of its own and hands completions to the socket's executor, the
  // context's). The read is cancelled through the future's cancellation
  // slot, once pending and once by dropping it.
  zokio::io_context ctx;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), 0});
  asio::ip::tcp::socket client(ctx), server(ctx);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);

  std::array<char, 16> buf{};
  auto pending = server.async_read_some(asio::buffer(buf), zokio::use_future);
  asio::post(ctx, [&] {
    pending.cancel();
    auto dropped = server.async_read_some(asio::buffer(buf), zokio::use_future);
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(pending.ready());
  try
  {
    pending.get();
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }

  asio::write(client, asio::buffer("hello", 5));
  auto got = server.async_read_some(asio::buffer(buf), zokio::use_future);
  ctx.restart();
  zokio_test::run_bounded(ctx);
  std::size_t n = got.get();
  BOOST_TEST(n == 5u);
  BOOST_TEST(std::string(buf.data(), n) == "hello");
}

namespace {

// Reads everything the peer sent (n bytes) with zokio::use_future and
// checks every byte against the pattern.
void read_pattern(zokio::io_context& ctx, zokio::ip::tcp::socket& s, const std::string& sent)
{
  std::string got;
  std::array<char, 64> buf{};
  while (got.size() < sent.size())
  {
    auto f = s.async_read_some(asio::buffer(buf), zokio::use_future);
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_REQUIRE(f.ready());
    std::size_t n = f.get();
    BOOST_REQUIRE(n > 0u);
    got.append(buf.data(), n);
  }
  BOOST_TEST(got == sent);
}

template <typename F>
boost::system::error_code failure_of(F& f)
{
  try
  {
    f.get();
  }
  catch (const boost::system::system_error& e)
  {
    return e.code();
  }
  return {};
}

} // namespace

// zokio's own TCP socket: a read started with zokio::use_future and no data
// to read is cancelled through the future (cancel(), or dropping it), at
// three stages:
//   not_on_a_ring  initiated and cancelled before the context runs: handed
//                  over, then aborted without reaching the kernel
//   in_kernel      cancelled 5 ms after it started, from the context: an
//                  IORING_OP_ASYNC_CANCEL follows it into the kernel
//   dropped        as in_kernel, by destroying the future
// Each time the read fails with operation_aborted, and afterwards a new read
// receives every byte the peer writes.
BOOST_AUTO_TEST_CASE(cancelled_read_leaves_the_socket_usable)
{
  enum class stage { not_on_a_ring, in_kernel, dropped };
  const char* names[] = {"not_on_a_ring", "in_kernel", "dropped"};
  int round = 0;
  for (stage when : {stage::not_on_a_ring, stage::in_kernel, stage::dropped})
  {
    BOOST_TEST_CONTEXT("stage " << names[static_cast<int>(when)])
    {
      zokio::io_context ctx;
      auto [a, b] = zokio_test::connected_pair(ctx);
      std::array<char, 64> buf{};
      zokio::future<std::size_t> f;
      zokio::statistics before{}, after_cancel{};
      bool dropped_read_done = false;
      zokio::steady_timer delay(ctx);
      switch (when)
      {
      case stage::not_on_a_ring:
        f = b.async_read_some(asio::buffer(buf), zokio::use_future);
        f.cancel(); // carried to the context, which has not run yet
        break;
      case stage::in_kernel:
        asio::post(ctx, [&, &b = b] {
          f = b.async_read_some(asio::buffer(buf), zokio::use_future);
          delay.expires_after(5ms);
          delay.async_wait([&](error_code) {
            before = ctx.statistics(); // the read's SQE is in the kernel
            f.cancel();
          });
        });
        break;
      case stage::dropped:
        asio::post(ctx, [&, &b = b] {
          auto g = std::make_shared<zokio::future<std::size_t>>(
              b.async_read_some(asio::buffer(buf), zokio::use_future));
          delay.expires_after(5ms);
          delay.async_wait([&, g](error_code) mutable {
            before = ctx.statistics();
            // Dropping the future cancels the read; the operation's
            // memory lives on until its completion is reaped.
            g.reset();
            dropped_read_done = true;
          });
        });
        break;
      }
      zokio_test::run_bounded(ctx);
      after_cancel = ctx.statistics();

      if (when == stage::dropped)
      {
        BOOST_TEST(dropped_read_done);
      }
      else
      {
        BOOST_REQUIRE(f.ready());
        BOOST_TEST(failure_of(f) == asio::error::operation_aborted);
      }
      if (when == stage::not_on_a_ring)
      {
        // Aborted before any SQE was prepared for it.
        BOOST_TEST(after_cancel.submissions == 0u);
      }
      else
      {
        // After the snapshot: the ASYNC_CANCEL was submitted, and both it
        // and the read completed in the kernel (the context's run() has
        // returned, so every completion was reaped).
        BOOST_TEST(after_cancel.submissions >= before.submissions + 1);
        BOOST_TEST(after_cancel.completions >= before.completions + 2);
      }

      // The socket still works: the peer's bytes all arrive, in order.
      std::string sent;
      for (int i = 0; i < 200; ++i)
        sent.push_back(static_cast<char>('a' + (i * 7 + round) % 26));
      asio::write(a, asio::buffer(sent));
      read_pattern(ctx, b, sent);
      ++round;
    }
  }
  BOOST_TEST(round == 3);
}

BOOST_AUTO_TEST_CASE(awaiting_coroutine_cancellation_reaches_the_operation)
{
  zokio::io_context ctx;
  asio::cancellation_signal signal;
  error_code result;
  zokio::steady_timer t(ctx, 1h);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    try
    {
      co_await t.async_wait(zokio::use_future);
    }
    catch (const boost::system::system_error& e)
    {
      result = e.code();
    }
  }, asio::bind_cancellation_slot(signal.slot(), asio::detached));
  asio::post(ctx, [&] { signal.emit(asio::cancellation_type::terminal); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(broken_promise_when_the_context_goes_away)
{
  zokio::future<void> f;
  zokio::future<int> g;
  {
    zokio::io_context ctx;
    zokio::steady_timer t(ctx, 1h);
    f = t.async_wait(zokio::use_future);
    g = async_complete_with<void(int)>(ctx, zokio::use_future, 1);
  }
  BOOST_TEST(f.ready());
  BOOST_CHECK_THROW(f.get(), std::future_error);
  BOOST_CHECK_THROW(g.get(), std::future_error);
}

BOOST_AUTO_TEST_CASE(move_and_wait)
{
  zokio::io_context ctx;
  context_thread runner(ctx);
  zokio::future<int> a = async_complete_with<void(int)>(ctx, zokio::use_future, 9);
  zokio::future<int> b(std::move(a));
  BOOST_TEST(!a.valid());
  b.wait();
  BOOST_TEST(b.ready());
  BOOST_TEST(b.valid());
  a = std::move(b);
  BOOST_TEST(a.get() == 9);
}

BOOST_AUTO_TEST_CASE(asio_context_operations)
{
  // The token works on Asio's own contexts too.
  asio::io_context ctx;
  auto f = asio::post(ctx, zokio::use_future);
  asio::steady_timer t(ctx, 1ms);
  auto g = t.async_wait(zokio::use_future);
  asio::steady_timer u(ctx, 1h);
  auto h = u.async_wait(zokio::use_future);
  h.cancel();
  ctx.run();
  f.get();
  g.get();
  BOOST_CHECK_THROW(h.get(), boost::system::system_error);
}
