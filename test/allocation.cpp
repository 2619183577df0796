// Steady-state operations allocate nothing: operation memory comes from the
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
// handler's allocator, which by default recycles blocks per thread.
//
// Global operator new/delete are replaced with counting versions; each case
// warms up, then counts allocations over many more operations.
#include <zokio/io_context.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/detail/nop_op.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/provided_buffer_pool.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/future.hpp>
#include <zokio/connect_pipe.hpp>
#include <zokio/random_access_file.hpp>
#include <zokio/readable_pipe.hpp>
#include <zokio/writable_pipe.hpp>

#define BOOST_TEST_MODULE allocation
#include <boost/test/unit_test.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/read.hpp>

#include <atomic>
#include <string>
#include <vector>
#include <unistd.h>
#include <cstdlib>
#include <latch>
#include <new>
#include <thread>

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

namespace {

// Two connected loopback sockets (blocking calls, before counting starts).
template <typename Context>
std::pair<zokio::ip::tcp::socket, zokio::ip::tcp::socket> socket_pair(Context& ctx)
{
  using zokio::ip::tcp;
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket a(ctx), b(ctx);
  a.connect(acceptor.local_endpoint());
  acceptor.accept(b);
  return {std::move(a), std::move(b)};
}

} // namespace

BOOST_AUTO_TEST_CASE(socket_read_write_chain_allocates_nothing)
{
  // Ping-pong of 64-byte messages with callbacks: write_some, read_some,
  // and the composed async_write / async_read on top.
  zokio::io_context ctx;
  auto [a, b] = socket_pair(ctx);
  long at_start = 0;
  int count = 0;
  constexpr int rounds = 20000;
  char out[64] = {1, 2, 3};
  char in[64];
  char echo[64];
  struct ping
  {
    zokio::ip::tcp::socket* a;
    zokio::ip::tcp::socket* b;
    char* out;
    char* in;
    char* echo;
    int* count;
    long* at_start;
    void operator()(error_code ec, std::size_t)
    {
      BOOST_TEST(!ec);
      if (++*count == warm_up)
        *at_start = allocations.load();
      if (*count == rounds)
        return;
      auto self = *this;
      asio::async_write(*a, asio::buffer(out, 64), [self](error_code ec, std::size_t) mutable {
        BOOST_TEST(!ec);
        self.b->async_read_some(asio::buffer(self.echo, 64), [self](error_code ec, std::size_t n) mutable {
          BOOST_TEST(!ec);
          self.b->async_write_some(asio::buffer(self.echo, n), [self](error_code ec, std::size_t) mutable {
            BOOST_TEST(!ec);
            asio::async_read(*self.a, asio::buffer(self.in, 64), self);
          });
        });
      });
    }
  };
  asio::post(ctx, [&] { ping{&a, &b, out, in, echo, &count, &at_start}(error_code(), 0); });
  ctx.run();
  BOOST_TEST(count == rounds);
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(pipe_and_file_transfers_allocate_nothing)
{
  // A coroutine that moves 64 bytes through a pipe and reads 4 KiB from a
  // file at an offset, again and again (on epoll and kqueue the file read
  // goes through the blocking pool, whose queue must not allocate either
  // once warm).
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  std::string path = "/tmp/zokio-allocation-" + std::to_string(::getpid());
  zokio::random_access_file f(ctx, path, zokio::file_base::read_write | zokio::file_base::create);
  std::vector<char> page(4096, 'p');
  f.write_some_at(0, asio::buffer(page));
  long at_start = 0;
  int count = 0;
  constexpr int rounds = 5000;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    char msg[64] = {7};
    char in[64];
    char block[4096];
    for (; count < rounds; ++count)
    {
      if (count == warm_up)
        at_start = allocations.load();
      co_await asio::async_write(w, asio::buffer(msg), asio::use_awaitable);
      co_await asio::async_read(r, asio::buffer(in), asio::use_awaitable);
      co_await f.async_read_some_at(0, asio::buffer(block), asio::use_awaitable);
    }
  }, asio::detached);
  ctx.run();
  ::unlink(path.c_str());
  BOOST_TEST(count == rounds);
  BOOST_TEST(allocations.load() - at_start == 0);
}

BOOST_AUTO_TEST_CASE(coroutine_socket_echo_allocates_nothing)
{
  zokio::io_context ctx;
  auto [a, b] = socket_pair(ctx);
  long at_start = 0;
  int count = 0;
  constexpr int rounds = 20000;
  asio::co_spawn(ctx, [&, &b = b]() -> asio::awaitable<void> {
    char buf[256];
    for (;;)
    {
      std::size_t n = co_await b.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(b, asio::buffer(buf, n), asio::use_awaitable);
    }
  }, [](std::exception_ptr) {});
  asio::co_spawn(ctx, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    char msg[100] = {9}, got[100];
    for (int i = 0; i < rounds; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      co_await asio::async_write(a, asio::buffer(msg), asio::use_awaitable);
      co_await asio::async_read(a, asio::buffer(got), asio::use_awaitable);
      ++count;
    }
    BOOST_TEST(allocations.load() - at_start == 0);
    b.close(); // ends the echo loop
  }, asio::detached);
  ctx.run();
  BOOST_TEST(count == rounds);
}

BOOST_AUTO_TEST_CASE(coroutine_socket_echo_on_a_pool_allocates_nothing)
{
  // The same echo on a 2-worker thread_pool: completions may be stolen, so
  // operation memory can be allocated on one worker and freed on the other;
  // each worker's recycling cache must still absorb it.
  zokio::thread_pool pool(2);
  auto [a, b] = socket_pair(pool);
  std::atomic<long> at_start{0}, at_end{0};
  std::atomic<int> count{0};
  std::string client_error;  // read after join()
  constexpr int rounds = 20000;
  asio::co_spawn(pool, [&, &b = b]() -> asio::awaitable<void> {
    char buf[256];
    for (;;)
    {
      std::size_t n = co_await b.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(b, asio::buffer(buf, n), asio::use_awaitable);
    }
  }, [](std::exception_ptr) {});
  asio::co_spawn(pool, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    char msg[100] = {9}, got[100];
    for (int i = 0; i < rounds; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      co_await asio::async_write(a, asio::buffer(msg), asio::use_awaitable);
      co_await asio::async_read(a, asio::buffer(got), asio::use_awaitable);
      ++count;
    }
    at_end = allocations.load();
  }, [&, &a = a](std::exception_ptr e) {
    // On a worker: record, do not assert (Boost.Test is not thread-safe).
    if (e)
    {
      try { std::rethrow_exception(e); }
      catch (const std::exception& x) { client_error = x.what(); }
    }
    // Ends the echo loop, also after an error: its read gets eof, whether it
    // is pending or not started yet. (Not b.cancel(): the echo coroutine may
    // still be between its write and its next read on the other worker, and
    // a cancel finds no operation then; nor b.close(), which would touch b
    // while that coroutine may be using it.)
    error_code ignored;
    a.shutdown(zokio::ip::tcp::socket::shutdown_send, ignored);
  });
  pool.join();
  BOOST_TEST(client_error == "");
  BOOST_TEST(count.load() == rounds);
  BOOST_TEST(at_end.load() - at_start.load() == 0);
}

BOOST_AUTO_TEST_CASE(provided_buffer_echo_allocates_nothing)
{
  // The echo side receives into a provided_buffer_pool (kernel buffer ring,
  // or its fallback under ZOKIO_NET_FEATURES=none) and writes the buffer back.
  zokio::io_context ctx;
  auto [a, b] = socket_pair(ctx);
  zokio::provided_buffer_pool buffers(ctx, 256, 8);
  long at_start = 0;
  int count = 0;
  constexpr int rounds = 20000;
  asio::co_spawn(ctx, [&, &b = b]() -> asio::awaitable<void> {
    for (;;)
    {
      zokio::provided_buffer buf = co_await b.async_receive_provided(buffers, asio::use_awaitable);
      co_await asio::async_write(b, buf.buffer(), asio::use_awaitable);
    }
  }, [](std::exception_ptr) {});
  asio::co_spawn(ctx, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    char msg[100] = {9}, got[100];
    for (int i = 0; i < rounds; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      co_await asio::async_write(a, asio::buffer(msg), asio::use_awaitable);
      co_await asio::async_read(a, asio::buffer(got), asio::use_awaitable);
      ++count;
    }
    BOOST_TEST(allocations.load() - at_start == 0);
    b.close(); // ends the echo loop
  }, asio::detached);
  ctx.run();
  BOOST_TEST(count == rounds);
}

BOOST_AUTO_TEST_CASE(receive_loop_echo_allocates_nothing)
{
  // The echo side is one async_receive_each loop (its receive lives in the
  // loop) writing each chunk back; no allocation per chunk.
  zokio::io_context ctx;
  auto [a, b] = socket_pair(ctx);
  zokio::provided_buffer_pool buffers(ctx, 256, 8);
  long at_start = 0;
  int count = 0;
  constexpr int rounds = 20000;
  b.async_receive_each(buffers, [&b = b](boost::system::error_code ec, zokio::provided_buffer buf) {
    if (ec)
      return;
    auto data = buf.buffer();
    asio::async_write(b, data, [buf = std::move(buf)](boost::system::error_code, std::size_t) {});
  });
  asio::co_spawn(ctx, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    char msg[100] = {9}, got[100];
    for (int i = 0; i < rounds; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      co_await asio::async_write(a, asio::buffer(msg), asio::use_awaitable);
      co_await asio::async_read(a, asio::buffer(got), asio::use_awaitable);
      ++count;
    }
    BOOST_TEST(allocations.load() - at_start == 0);
    b.close(); // ends the loop
  }, asio::detached);
  ctx.run();
  BOOST_TEST(count == rounds);
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

// Makes sure both workers of a 2-worker pool have entered their run loops
// before counting: two handlers that each wait for the other can only finish
// on two different workers. A worker's first entry allocates once (its
// runner and ring, its thread's identity), and on a busy machine a worker
// may otherwise start late, inside the counted window: that is start-up,
// not steady state.
void wait_for_every_worker(zokio::thread_pool& pool)
{
  std::latch both(2);
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i)
    asio::post(pool, [&] {
      both.arrive_and_wait();
      ++ran;
    });
  while (ran.load() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// zokio::use_future on a 2-worker thread_pool: a zero-length timer wait and
// a post round trip per iteration, awaited by a coroutine. Completions may be
// stolen, so a state or an operation can be allocated on one worker and
// freed on the other; each worker's recycling cache must absorb it. (A
// future waited for with get() by a thread outside the pool is not covered:
// that thread has no recycling cache, as with Asio's own operations.)
BOOST_AUTO_TEST_CASE(use_future_coroutine_loop_on_a_pool_allocates_nothing)
{
  zokio::thread_pool pool(2);
  wait_for_every_worker(pool);
  std::atomic<long> at_start{0}, at_end{0};
  std::atomic<int> count{0};
  asio::co_spawn(pool, [&]() -> asio::awaitable<void> {
    zokio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < warm_up + measured; ++i)
    {
      if (i == warm_up)
        at_start = allocations.load();
      timer.expires_after(std::chrono::nanoseconds(0));
      co_await timer.async_wait(zokio::use_future);
      co_await asio::post(pool.get_executor(), zokio::use_future);
      ++count;
    }
    at_end = allocations.load();
  }, asio::detached);
  pool.join();
  BOOST_TEST(count.load() == warm_up + measured);
  BOOST_TEST(at_end.load() - at_start.load() == 0);
}

// The same two operations as a then() chain on the pool: each callback
// starts the next operation.
BOOST_AUTO_TEST_CASE(use_future_then_chain_on_a_pool_allocates_nothing)
{
  zokio::thread_pool pool(2);
  wait_for_every_worker(pool);
  zokio::steady_timer timer(pool);
  std::atomic<long> at_start{0}, at_end{0};
  std::atomic<int> count{0};
  struct step
  {
    zokio::thread_pool* pool;
    zokio::steady_timer* timer;
    std::atomic<int>* count;
    std::atomic<long>* at_start;
    std::atomic<long>* at_end;
    void operator()(std::exception_ptr e)
    {
      BOOST_TEST(!e);
      int n = ++*count;
      if (n == warm_up)
        *at_start = allocations.load();
      if (n == warm_up + measured)
      {
        *at_end = allocations.load();
        return;
      }
      if (n % 2 == 0)
      {
        timer->expires_after(std::chrono::nanoseconds(0));
        timer->async_wait(zokio::use_future).then(*this);
      }
      else
      {
        asio::post(pool->get_executor(), zokio::use_future).then(*this);
      }
    }
  };
  asio::post(pool, [&] {
    asio::post(pool.get_executor(), zokio::use_future)
        .then(step{&pool, &timer, &count, &at_start, &at_end});
  });
  pool.join();
  BOOST_TEST(count.load() == warm_up + measured);
  BOOST_TEST(at_end.load() - at_start.load() == 0);
}
