// Steady-state operations allocate nothing: operation memory comes from the
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
// handler's allocator, which by default recycles blocks per thread.
//
// Global operator new/delete are replaced with counting versions; each case
// warms up, then counts allocations over many more operations.
#include <zokio/io_context.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/detail/uring/ops/nop_op.hpp>
#include <zokio/future.hpp>

#define BOOST_TEST_MODULE allocation
#include <boost/test/unit_test.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n)
{
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::align_val_t a)
{
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::aligned_alloc(static_cast<std::size_t>(a), (n + static_cast<std::size_t>(a) - 1) & ~(static_cast<std::size_t>(a) - 1)))
    return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace asio = boost::asio;
using error_code = boost::system::error_code;

constexpr int warm_up = 1000;
constexpr int measured = 100000;

BOOST_AUTO_TEST_CASE(post_chain_allocates_nothing)
{
  zokio::io_context ctx;
  long at_start = 0;
  int count = 0;
  struct step
  {
    zokio::io_context* ctx;
    int* count;
    long* at_start;
    char payload[32] = {}; // a small handler with some state
    void operator()()
    {
      if (++*count == warm_up)
        *at_start = allocations.load();
      if (*count < warm_up + measured)
        asio::post(*ctx, *this);
    }
  };
  asio::post(ctx, step{&ctx, &count, &at_start});
  ctx.run();
  long used = allocations.load() - at_start;
  BOOST_TEST(count == warm_up + measured);
  BOOST_TEST(used == 0);
}

BOOST_AUTO_TEST_CASE(timer_wait_chain_allocates_nothing)
{
  zokio::io_context ctx;
  zokio::steady_timer timer(ctx);
  long at_start = 0;
  int count = 0;
  struct step
  {
    zokio::steady_timer* timer;
    int* count;
    long* at_start;
    void operator()(error_code ec)
    {
      BOOST_TEST(!ec);
      if (++*count == warm_up)
        *at_start = allocations.load();
      if (*count < warm_up + measured)
      {
        timer->expires_after(std::chrono::nanoseconds(0));
        timer->async_wait(*this);
      }
    }
  };
  timer.expires_after(std::chrono::nanoseconds(0));
  timer.async_wait(step{&timer, &count, &at_start});
  ctx.run();
  BOOST_TEST(count == warm_up + measured);
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(timer_waits_through_the_heap_allocate_nothing)
{
  // Waits that are not yet due go through the timer heap (its storage is
  // reused once grown).
  zokio::io_context ctx;
  zokio::steady_timer timer(ctx);
  long at_start = 0;
  int count = 0;
  constexpr int n = 2000;
  struct step
  {
    zokio::steady_timer* timer;
    int* count;
    long* at_start;
    void operator()(error_code ec)
    {
      BOOST_TEST(!ec);
      if (++*count == 100)
        *at_start = allocations.load();
      if (*count < n)
      {
        timer->expires_after(std::chrono::microseconds(20));
        timer->async_wait(*this);
      }
    }
  };
  timer.expires_after(std::chrono::microseconds(20));
  timer.async_wait(step{&timer, &count, &at_start});
  ctx.run();
  BOOST_TEST(count == n);
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(coroutine_timer_loop_allocates_nothing)
{
  zokio::io_context ctx;
  long at_start = 0;
  int count = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < warm_up + measured; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      timer.expires_after(std::chrono::nanoseconds(0));
      co_await timer.async_wait(asio::use_awaitable);
      ++count;
    }
  }, asio::detached);
  ctx.run();
  BOOST_TEST(count == warm_up + measured);
  // The count is taken inside the coroutine, so the frame itself is not in it.
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(kernel_operation_chain_allocates_nothing)
{
  zokio::io_context ctx;
  long at_start = 0;
  int count = 0;
  struct step
  {
    zokio::io_context* ctx;
    int* count;
    long* at_start;
    void operator()(error_code ec)
    {
      BOOST_TEST(!ec);
      if (++*count == warm_up)
        *at_start = allocations.load();
      if (*count < warm_up + measured)
        zokio::detail::async_nop(ctx->get_executor(), *this);
    }
  };
  asio::post(ctx, [&] { zokio::detail::async_nop(ctx.get_executor(), step{&ctx, &count, &at_start}); });
  ctx.run();
  BOOST_TEST(count == warm_up + measured);
  BOOST_TEST(allocations.load() - at_start == 0);
  auto s = ctx.statistics();
  BOOST_TEST(s.completions >= static_cast<std::uint64_t>(warm_up + measured));
}

BOOST_AUTO_TEST_CASE(use_future_coroutine_loop_allocates_nothing)
{
  // co_await of zokio futures: the shared state, the timer wait and the
  // operation's cancellation handler all come from per-thread caches.
  zokio::io_context ctx;
  long at_start = 0;
  int count = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    zokio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < warm_up + measured; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      timer.expires_after(std::chrono::nanoseconds(0));
      co_await timer.async_wait(zokio::use_future);
      co_await zokio::detail::async_nop(ctx.get_executor(), zokio::use_future);
      ++count;
    }
  }, asio::detached);
  ctx.run();
  BOOST_TEST(count == warm_up + measured);
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(use_future_then_chain_allocates_nothing)
{
  zokio::io_context ctx;
  zokio::steady_timer timer(ctx);
  long at_start = 0;
  int count = 0;
  struct step
  {
    zokio::steady_timer* timer;
    int* count;
    long* at_start;
    void operator()(std::exception_ptr e)
    {
      BOOST_TEST(!e);
      if (++*count == warm_up)
        *at_start = allocations.load();
      if (*count < warm_up + measured)
      {
        timer->expires_after(std::chrono::nanoseconds(0));
        timer->async_wait(zokio::use_future).then(*this);
      }
    }
  };
  asio::post(ctx, [&] {
    timer.expires_after(std::chrono::nanoseconds(0));
    timer.async_wait(zokio::use_future).then(step{&timer, &count, &at_start});
  });
  ctx.run();
  BOOST_TEST(count == warm_up + measured);
  BOOST_TEST(allocations.load() - at_start == 0);
}
