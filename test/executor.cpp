// Executor conformance: zokio's executors must satisfy Asio's executor
// requirements and answer property queries exactly as
// boost::asio::io_context's executor does, so Asio's own facilities (post,
// dispatch, defer, co_spawn, strands, any_io_executor, work guards,
// bind_executor, Asio's I/O objects) work on them unchanged.
//
// The cases are templates over the contexts listed in `contexts`, so every
// zokio context type is held to the same suite.
#include <zokio/io_context.hpp>

#define BOOST_TEST_MODULE executor
#include <boost/test/unit_test.hpp>

#include <support/harness.hpp>
#include <support/run.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/mpl/list.hpp>

#include <atomic>
#include <csignal>
#include <future>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace execution = boost::asio::execution;
using namespace std::chrono_literals;

// Every zokio context type, driven by a harness (test/support/harness.hpp).
using harnesses = boost::mpl::list<zokio_test::io_context_harness, zokio_test::thread_pool_harness>;

//------------------------------------------------------------------------------
// Compile section.

using zex = zokio::io_context::executor_type;
using aex = asio::io_context::executor_type;

static_assert(execution::is_executor<zex>::value);
static_assert(asio::is_executor<zex>::value); // Networking TS requirements
static_assert(asio::can_query<zex, execution::context_t>::value);
static_assert(asio::can_query<zex, execution::blocking_t>::value);
static_assert(asio::can_query<zex, execution::relationship_t>::value);
static_assert(asio::can_query<zex, execution::outstanding_work_t>::value);
static_assert(asio::can_query<zex, execution::mapping_t>::value);
static_assert(asio::can_query<zex, execution::allocator_t<void>>::value);
static_assert(asio::can_require<zex, execution::blocking_t::never_t>::value);
static_assert(asio::can_require<zex, execution::blocking_t::possibly_t>::value);
static_assert(asio::can_require<zex, execution::relationship_t::continuation_t>::value);
static_assert(asio::can_require<zex, execution::relationship_t::fork_t>::value);
static_assert(asio::can_prefer<zex, execution::outstanding_work_t::tracked_t>::value);
static_assert(asio::can_prefer<zex, execution::outstanding_work_t::untracked_t>::value);
static_assert(asio::can_require<zex, execution::allocator_t<std::allocator<int>>>::value);
static_assert(std::is_convertible_v<zex, asio::any_io_executor>);
static_assert(std::is_constructible_v<asio::executor, zex>);
static_assert(std::is_nothrow_copy_constructible_v<zex>);
static_assert(std::is_same_v<
    std::decay_t<decltype(asio::query(std::declval<zex>(), execution::context))>,
    zokio::io_context>);

using pex = zokio::thread_pool::executor_type;
static_assert(execution::is_executor<pex>::value);
static_assert(asio::is_executor<pex>::value);
static_assert(std::is_convertible_v<pex, asio::any_io_executor>);
static_assert(asio::can_require<pex, zokio::priority::background_t>::value);
static_assert(asio::can_require<zex, zokio::priority::immediate_t>::value);
static_assert(asio::can_query<zex, zokio::priority::current_t>::value);

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(default_properties_match_asio_io_context)
{
  zokio::io_context z;
  asio::io_context a;
  auto ze = z.get_executor();
  auto ae = a.get_executor();
  BOOST_TEST((asio::query(ze, execution::blocking) == asio::query(ae, execution::blocking)));
  BOOST_TEST((asio::query(ze, execution::blocking) == execution::blocking.possibly));
  BOOST_TEST((asio::query(ze, execution::relationship) == asio::query(ae, execution::relationship)));
  BOOST_TEST((asio::query(ze, execution::relationship) == execution::relationship.fork));
  BOOST_TEST((asio::query(ze, execution::outstanding_work) == asio::query(ae, execution::outstanding_work)));
  BOOST_TEST((asio::query(ze, execution::outstanding_work) == execution::outstanding_work.untracked));
  BOOST_TEST((asio::query(ze, execution::mapping) == asio::query(ae, execution::mapping)));
  BOOST_TEST((asio::query(ze, execution::mapping) == execution::mapping.thread));
  BOOST_TEST(&asio::query(ze, execution::context) == &z);
}

BOOST_AUTO_TEST_CASE(require_and_prefer_change_properties)
{
  zokio::io_context z;
  auto ex = z.get_executor();
  auto never = asio::require(ex, execution::blocking.never);
  BOOST_TEST((asio::query(never, execution::blocking) == execution::blocking.never));
  auto possibly = asio::require(never, execution::blocking.possibly);
  BOOST_TEST((asio::query(possibly, execution::blocking) == execution::blocking.possibly));
  auto cont = asio::require(ex, execution::relationship.continuation);
  BOOST_TEST((asio::query(cont, execution::relationship) == execution::relationship.continuation));
  auto fork = asio::require(cont, execution::relationship.fork);
  BOOST_TEST((asio::query(fork, execution::relationship) == execution::relationship.fork));
  auto tracked = asio::prefer(ex, execution::outstanding_work.tracked);
  BOOST_TEST((asio::query(tracked, execution::outstanding_work) == execution::outstanding_work.tracked));
  auto untracked = asio::prefer(tracked, execution::outstanding_work.untracked);
  BOOST_TEST((asio::query(untracked, execution::outstanding_work) == execution::outstanding_work.untracked));
  std::allocator<int> a;
  auto alloc = asio::require(ex, execution::allocator(a));
  BOOST_TEST((asio::query(alloc, execution::allocator) == a));
  auto back = asio::require(alloc, execution::allocator);
  BOOST_TEST((asio::query(back, execution::allocator) == std::allocator<void>()));
}

BOOST_AUTO_TEST_CASE(equality)
{
  zokio::io_context a;
  zokio::io_context b;
  BOOST_TEST((a.get_executor() == a.get_executor()));
  BOOST_TEST((a.get_executor() != b.get_executor()));
  BOOST_TEST((asio::require(a.get_executor(), execution::blocking.never) != a.get_executor()));
}

BOOST_AUTO_TEST_CASE(tracked_executor_keeps_run_alive)
{
  zokio::io_context ctx;
  std::atomic<bool> returned{false};
  auto tracked = std::make_unique<decltype(asio::prefer(ctx.get_executor(),
        execution::outstanding_work.tracked))>(
      asio::prefer(ctx.get_executor(), execution::outstanding_work.tracked));
  auto copy = *tracked; // copies count too
  std::thread t([&] {
    ctx.run();
    returned = true;
  });
  std::this_thread::sleep_for(30ms);
  BOOST_TEST(!returned.load());
  tracked.reset();
  std::this_thread::sleep_for(30ms);
  BOOST_TEST(!returned.load());
  asio::post(ctx, [c = std::move(copy)]() mutable { auto drop = std::move(c); });
  t.join();
  BOOST_TEST(returned.load());
}

BOOST_AUTO_TEST_CASE(post_dispatch_defer_from_outside)
{
  zokio::io_context ctx;
  int order = 0;
  int p = -1, d = -1, f = -1, pe = -1, de = -1, fe = -1;
  asio::post(ctx, [&] { p = order++; });
  asio::dispatch(ctx, [&] { d = order++; }); // not inside: queued
  asio::defer(ctx, [&] { f = order++; });
  asio::post(ctx.get_executor(), [&] { pe = order++; });
  asio::dispatch(ctx.get_executor(), [&] { de = order++; });
  asio::defer(ctx.get_executor(), [&] { fe = order++; });
  BOOST_TEST(order == 0); // nothing ran inside the initiating functions
  zokio_test::run_bounded(ctx);
  BOOST_TEST(p == 0);
  BOOST_TEST(d == 1);
  BOOST_TEST(f == 2);
  BOOST_TEST(pe == 3);
  BOOST_TEST(de == 4);
  BOOST_TEST(fe == 5);
}

BOOST_AUTO_TEST_CASE(post_dispatch_defer_from_inside)
{
  zokio::io_context ctx;
  std::vector<std::string> log;
  asio::post(ctx, [&] {
    asio::post(ctx, [&] { log.push_back("post"); });
    asio::defer(ctx, [&] { log.push_back("defer"); });
    asio::dispatch(ctx, [&] { log.push_back("dispatch"); }); // inside: runs now
    log.push_back("end");
  });
  zokio_test::run_bounded(ctx);
  std::vector<std::string> expected{"dispatch", "end", "post", "defer"};
  BOOST_TEST(log == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(post_from_other_threads)
{
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::atomic<int> count{0};
  constexpr int per_thread = 10000;
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t)
    posters.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        asio::post(ctx.get_executor(), [&] { ++count; });
    });
  std::thread runner([&] { zokio_test::run_bounded(ctx); });
  for (auto& p : posters)
    p.join();
  asio::post(ctx, [&] { guard.reset(); });
  runner.join();
  BOOST_TEST(count.load() == 4 * per_thread);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(running_in_this_thread, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  BOOST_TEST(!ctx.get_executor().running_in_this_thread());
  bool inside = false;
  asio::post(ctx, [&] { inside = ctx.get_executor().running_in_this_thread(); });
  h.run();
  BOOST_TEST(inside);
}

asio::awaitable<int> add_later(int a, int b)
{
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return a + b;
}

BOOST_AUTO_TEST_CASE_TEMPLATE(co_spawn_with_every_token, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  int result = 0;
  bool failed = false;
  asio::co_spawn(ctx, add_later(1, 2), [&](std::exception_ptr e, int v) {
    failed = e != nullptr; // checked below: Boost.Test is not thread-safe
    result = v;
  });
  bool detached_ran = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    co_await add_later(0, 0);
    detached_ran = true;
  }, asio::detached);
  std::future<int> fut = asio::co_spawn(ctx, add_later(20, 22), asio::use_future);
  // use_awaitable: a coroutine awaiting another spawned one.
  int nested = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    nested = co_await asio::co_spawn(ctx, add_later(5, 5), asio::use_awaitable);
  }, asio::detached);
  h.run();
  BOOST_TEST(result == 3);
  BOOST_TEST(!failed);
  BOOST_TEST(detached_ran);
  BOOST_TEST(fut.get() == 42);
  BOOST_TEST(nested == 10);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(co_spawn_exception_reaches_completion, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  std::future<void> fut = asio::co_spawn(ctx, []() -> asio::awaitable<void> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("boom");
  }, asio::use_future);
  h.run();
  BOOST_CHECK_THROW(fut.get(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(use_future_from_another_thread)
{
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  std::future<int> fut = asio::co_spawn(ctx, add_later(2, 3), asio::use_future);
  BOOST_TEST(fut.get() == 5);
  std::future<void> posted = asio::post(ctx, asio::use_future);
  posted.get();
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(strand_serialises_with_two_threads)
{
  zokio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  int count = 0; // touched only inside the strand
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i)
  {
    asio::post(strand, [&] {
      if (inside.fetch_add(1) != 0)
        ++overlaps;
      ++count;
      inside.fetch_sub(1);
    });
  }
  // Unrelated work interleaved, so the second thread has something to do.
  std::atomic<int> other{0};
  for (int i = 0; i < n; ++i)
    asio::post(ctx, [&] { ++other; });
  std::thread t([&] { ctx.run(); });
  zokio_test::run_bounded(ctx);
  t.join();
  BOOST_TEST(count == n);
  BOOST_TEST(other.load() == n);
  BOOST_TEST(overlaps.load() == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(any_io_executor_and_this_coro_executor, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  using Context = typename H::context_type;
  asio::any_io_executor any = ctx.get_executor();
  BOOST_TEST((any == asio::any_io_executor(ctx.get_executor())));
  BOOST_TEST(any.target<typename Context::executor_type>() != nullptr);
  BOOST_TEST(&asio::query(any, execution::context) == static_cast<asio::execution_context*>(&ctx));
  bool same = false;
  bool ran = false;
  asio::post(any, [&] { ran = true; });
  asio::co_spawn(any, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    same = (ex == any);
  }, asio::detached);
  h.run();
  BOOST_TEST(ran);
  BOOST_TEST(same);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(polymorphic_asio_executor, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  asio::executor ex(ctx.get_executor());
  BOOST_TEST(&ex.context() == static_cast<asio::execution_context*>(&ctx));
  std::atomic<int> count{0};
  ex.post([&] { ++count; }, std::allocator<void>());
  ex.defer([&] { ++count; }, std::allocator<void>());
  ex.dispatch([&] { ++count; }, std::allocator<void>());
  asio::post(ex, [&] { ++count; });
  h.run();
  BOOST_TEST(count.load() == 4);
}

BOOST_AUTO_TEST_CASE(bind_executor_runs_on_the_bound_executor)
{
  using Context = zokio::io_context;
  Context ctx;
  Context other;
  auto strand = asio::make_strand(ctx);
  bool on_strand = false;
  bool on_other = false;
  // A zokio timer completion dispatched through bind_executor.
  asio::post(ctx, asio::bind_executor(strand, [&] { on_strand = strand.running_in_this_thread(); }));
  asio::post(ctx, asio::bind_executor(other.get_executor(),
      [&] { on_other = other.get_executor().running_in_this_thread(); }));
  zokio_test::run_bounded(ctx);
  BOOST_TEST(on_strand);
  BOOST_TEST(!on_other); // not run yet: it belongs to the other context
  zokio_test::run_bounded(other);
  BOOST_TEST(on_other);
}

BOOST_AUTO_TEST_CASE(work_guard_keeps_run_alive)
{
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::atomic<bool> returned{false};
  std::thread t([&] {
    ctx.run();
    returned = true;
  });
  std::this_thread::sleep_for(30ms);
  BOOST_TEST(!returned.load());
  guard.reset();
  t.join();
  BOOST_TEST(returned.load());
}

BOOST_AUTO_TEST_CASE(asio_steady_timer_on_zokio_context)
{
  using Context = zokio::io_context;
  Context ctx;
  auto t0 = std::chrono::steady_clock::now(); // before the expiry is computed
  asio::steady_timer timer(ctx, 20ms);
  boost::system::error_code result = asio::error::would_block;
  bool in_context = false;
  timer.async_wait([&](boost::system::error_code ec) {
    result = ec;
    in_context = ctx.get_executor().running_in_this_thread();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!result);
  BOOST_TEST(in_context);
  BOOST_TEST(zokio_test::ms_since(t0) >= 20.0);

  // Cancellation of an Asio timer on a zokio context.
  asio::steady_timer timer2(ctx, 10s);
  timer2.async_wait([&](boost::system::error_code ec) { result = ec; });
  asio::post(ctx, [&] { timer2.cancel(); });
  ctx.restart();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(asio_signal_set_on_zokio_context, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  asio::signal_set signals(ctx, SIGUSR1);
  int received = 0;
  boost::system::error_code result = asio::error::would_block;
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    result = ec;
    received = sig;
  });
  asio::post(ctx, [] { std::raise(SIGUSR1); });
  h.run();
  BOOST_TEST(!result);
  BOOST_TEST(received == SIGUSR1);
}

// An allocator that counts what it hands out.
template <typename T>
struct counting_allocator
{
  using value_type = T;
  std::atomic<int>* count;
  explicit counting_allocator(std::atomic<int>* c) noexcept : count(c) {}
  template <typename U>
  counting_allocator(const counting_allocator<U>& o) noexcept : count(o.count) {}
  T* allocate(std::size_t n)
  {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <typename U>
  bool operator==(const counting_allocator<U>& o) const noexcept { return count == o.count; }
  template <typename U>
  bool operator!=(const counting_allocator<U>& o) const noexcept { return count != o.count; }
};

BOOST_AUTO_TEST_CASE_TEMPLATE(allocator_property_provides_operation_memory, H, harnesses)
{
  H h;
  auto& ctx = h.ctx;
  std::atomic<int> count{0};
  auto ex = asio::require(ctx.get_executor(),
      execution::allocator(counting_allocator<void>(&count)));
  int ran = 0;
  asio::execution::execute(asio::require(ex, execution::blocking.never), [&] { ++ran; });
  BOOST_TEST(count.load() == 1);
  h.run();
  BOOST_TEST(ran == 1);
}
