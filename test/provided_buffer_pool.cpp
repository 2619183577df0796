// Tests of zokio::provided_buffer_pool and async_receive_provided.
//
// Built once and registered twice with ctest: tcp_provided_buffers (kernel
// buffer rings where the kernel has them) and tcp_provided_buffers_fallback
// (ZOKIO_NET_FEATURES=none: the user-space free list).
#include <zokio/provided_buffer_pool.hpp>

#define BOOST_TEST_MODULE provided_buffer_pool
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>

#include <zokio/detail/uring/net_features.hpp>
#include <zokio/future.hpp>
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;
using zokio::ip::tcp;
using zokio::provided_buffer;
using zokio::provided_buffer_pool;

namespace {

bool fallback_forced()
{
  const char* v = std::getenv("ZOKIO_NET_FEATURES");
  return v && std::strcmp(v, "none") == 0;
}

// Whether receives should use the kernel's buffer ring in this process.
bool kernel_mode_expected()
{
  return zokio::detail::uring::features().buffer_ring;
}

// Byte i of the test stream.
unsigned char pattern(std::size_t i)
{
  return static_cast<unsigned char>((i * 131 + i / 251) & 0xff);
}

std::vector<unsigned char> make_stream(std::size_t n)
{
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = pattern(i);
  return v;
}

} // namespace

//------------------------------------------------------------------------------
// Compile section.

namespace compile {

static_assert(!std::is_copy_constructible_v<provided_buffer>);
static_assert(std::is_nothrow_move_constructible_v<provided_buffer>);
static_assert(std::is_nothrow_move_assignable_v<provided_buffer>);
static_assert(std::is_convertible_v<const provided_buffer&, asio::const_buffer>);

struct receive_handler
{
  receive_handler() = default;
  receive_handler(receive_handler&&) = default;
  receive_handler(const receive_handler&) = delete;
  void operator()(error_code, provided_buffer) {}
};

[[maybe_unused]] asio::awaitable<void> coroutine(tcp::socket& s, provided_buffer_pool& pool)
{
  provided_buffer b = co_await s.async_receive_provided(pool, asio::use_awaitable);
  auto [ec, b2] = co_await s.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
  error_code ec2;
  provided_buffer b3 = co_await s.async_receive_provided(pool, 0,
      asio::redirect_error(asio::use_awaitable, ec2));
  provided_buffer b4 = co_await s.async_receive_provided(pool, asio::deferred);
  provided_buffer b5 = co_await s.async_receive_provided(pool, zokio::use_future);
  (void)b; (void)ec; (void)b2; (void)b3; (void)b4; (void)b5;
}

[[maybe_unused]] void instantiate(tcp::socket& s, provided_buffer_pool& pool)
{
  s.async_receive_provided(pool, receive_handler());
  s.async_receive_provided(pool, tcp::socket::message_flags(0), receive_handler());
  std::future<provided_buffer> f = s.async_receive_provided(pool, asio::use_future);
  zokio::future<provided_buffer> z = s.async_receive_provided(pool, zokio::use_future);
  (void)f; (void)z;
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

BOOST_AUTO_TEST_CASE(mode_follows_the_kernel)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 4);
  BOOST_TEST(!pool.kernel_selected()); // bound on the first receive
  a.write_some(asio::buffer("hi", 2));
  std::string got;
  b.async_receive_provided(pool, [&](error_code ec, provided_buffer buf) {
    BOOST_TEST(!ec);
    got.assign(static_cast<const char*>(buf.data()), buf.size());
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(got == "hi");
  if (fallback_forced())
  {
    BOOST_TEST(!pool.kernel_selected());
  }
  else if (!kernel_mode_expected())
  {
    BOOST_TEST_MESSAGE("skipped: this kernel has no provided buffer rings "
        "(IORING_REGISTER_PBUF_RING, linux 5.19); the fallback served the receive");
  }
  else
  {
    BOOST_TEST(pool.kernel_selected());
  }
}

BOOST_AUTO_TEST_CASE(invalid_sizes_throw)
{
  zokio::io_context ctx;
  BOOST_CHECK_THROW(provided_buffer_pool(ctx, 0, 4), boost::system::system_error);
  BOOST_CHECK_THROW(provided_buffer_pool(ctx, 64, 0), boost::system::system_error);
  BOOST_CHECK_THROW(provided_buffer_pool(ctx, 64, 40000), boost::system::system_error);
  asio::io_context foreign;
  BOOST_CHECK_THROW(provided_buffer_pool(foreign.get_executor(), 64, 4),
      boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(buffers_are_reused_and_every_byte_arrives)
{
  // 1 MiB through a pool of 4 x 256 bytes: thousands of receives, each
  // buffer released before the next receive; every byte checked in order.
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 256, 4);
  const std::size_t total = 1 << 20;
  auto stream = make_stream(total);
  std::size_t received = 0, receives = 0, mismatches = 0;
  asio::async_write(a, asio::buffer(stream), [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == total);
    a.shutdown(tcp::socket::shutdown_send);
  });
  asio::co_spawn(ctx, [&, &b = b]() -> asio::awaitable<void> {
    for (;;)
    {
      auto [ec, buf] = co_await b.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::eof)
      {
        BOOST_TEST(buf.empty());
        break;
      }
      BOOST_REQUIRE(!ec);
      BOOST_TEST(buf.size() <= pool.buffer_size());
      ++receives;
      auto* p = static_cast<const unsigned char*>(buf.data());
      for (std::size_t i = 0; i < buf.size(); ++i)
        if (p[i] != pattern(received + i))
          ++mismatches;
      received += buf.size();
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(received == total);
  BOOST_TEST(mismatches == 0u);
  BOOST_TEST(receives >= total / 256);
}

BOOST_AUTO_TEST_CASE(exhaustion_reports_no_buffer_space_and_loses_nothing)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 4, 2);
  std::vector<provided_buffer> held;
  std::string got;
  error_code exhausted;
  asio::co_spawn(ctx, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    // Take both buffers and keep them.
    for (int i = 0; i < 2; ++i)
    {
      co_await asio::async_write(a, asio::buffer("abcd", 4), asio::use_awaitable);
      provided_buffer buf = co_await b.async_receive_provided(pool, asio::use_awaitable);
      BOOST_TEST(buf.size() == 4u);
      got.append(static_cast<const char*>(buf.data()), buf.size());
      held.push_back(std::move(buf));
    }
    // Data waits in the socket, no buffer is free.
    co_await asio::async_write(a, asio::buffer("wxyz", 4), asio::use_awaitable);
    auto [ec, none] = co_await b.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
    exhausted = ec;
    BOOST_TEST(none.empty());
    // Releasing one buffer makes the data receivable, unchanged.
    held.front().release();
    BOOST_TEST(held.front().empty());
    provided_buffer buf = co_await b.async_receive_provided(pool, asio::use_awaitable);
    got.append(static_cast<const char*>(buf.data()), buf.size());
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(exhausted == asio::error::no_buffer_space);
  BOOST_TEST(got == "abcdabcdwxyz");
}

namespace {

// Receives n buffers on s while the peer writes, keeping them all: proves
// that n buffers are free in the pool.
void expect_free_buffers(zokio::io_context& ctx, tcp::socket& writer, tcp::socket& s,
    provided_buffer_pool& pool, std::size_t n)
{
  std::size_t taken = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    std::vector<provided_buffer> held;
    for (std::size_t i = 0; i < n; ++i)
    {
      co_await asio::async_write(writer, asio::buffer("q", 1), asio::use_awaitable);
      auto [ec, buf] = co_await s.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
      BOOST_TEST(!ec);
      if (!ec)
        ++taken;
      held.push_back(std::move(buf));
    }
  }, asio::detached);
  ctx.restart();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(taken == n);
}

} // namespace

BOOST_AUTO_TEST_CASE(cancel_before_submission)
{
  // Started outside the run loop and cancelled at once: never reaches a ring.
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 3);
  error_code result;
  bool empty = false;
  b.async_receive_provided(pool, [&](error_code ec, provided_buffer buf) {
    result = ec;
    empty = buf.empty();
  });
  b.cancel();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
  BOOST_TEST(empty);
  expect_free_buffers(ctx, a, b, pool, 3);
}

BOOST_AUTO_TEST_CASE(cancel_after_submission_by_slot)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 3);
  asio::cancellation_signal signal;
  error_code result;
  bool empty = false;
  zokio::steady_timer t(ctx);
  asio::post(ctx, [&, &b = b] {
    b.async_receive_provided(pool, asio::bind_cancellation_slot(signal.slot(),
        [&](error_code ec, provided_buffer buf) {
          result = ec;
          empty = buf.empty();
        }));
    // Later, once the receive is waiting in the kernel.
    t.expires_after(20ms);
    t.async_wait([&](error_code) { signal.emit(asio::cancellation_type::terminal); });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
  BOOST_TEST(empty);
  expect_free_buffers(ctx, a, b, pool, 3);
}

BOOST_AUTO_TEST_CASE(cancel_by_slot_every_type_and_stage)
{
  // Every cancellation type, at three stages: before the receive reaches a
  // ring (started outside the run loop), queued (SQE prepared, not yet
  // submitted) and waiting in the kernel. The receive completes once with
  // operation_aborted and an empty buffer, every buffer is back in the pool,
  // and the socket receives again.
  using asio::cancellation_type;
  int checked = 0;
  for (auto type : {cancellation_type::terminal, cancellation_type::partial, cancellation_type::total})
  {
    for (auto when : zokio_test::cancel_stages)
    {
      zokio::io_context ctx;
      auto [a, b] = zokio_test::connected_pair(ctx);
      provided_buffer_pool pool(ctx, 64, 3);
      asio::cancellation_signal signal;
      error_code result = asio::error::would_block;
      int calls = 0;
      bool empty = false;
      auto start = [&, &b = b] {
        b.async_receive_provided(pool, asio::bind_cancellation_slot(signal.slot(),
            [&](error_code ec, provided_buffer buf) {
              result = ec;
              empty = buf.empty();
              ++calls;
            }));
      };
      zokio_test::start_and_cancel(ctx, when, start, [&] { signal.emit(type); });
      BOOST_TEST((result == asio::error::operation_aborted),
          "type " << static_cast<int>(type) << " stage " << static_cast<int>(when) << ": " << result.message());
      BOOST_TEST(calls == 1);
      BOOST_TEST(empty);
      expect_free_buffers(ctx, a, b, pool, 3);
      ++checked;
    }
  }
  BOOST_TEST(checked == 3 * 3);
}

BOOST_AUTO_TEST_CASE(close_with_a_pending_receive)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 2);
  error_code result;
  zokio::steady_timer t(ctx);
  asio::post(ctx, [&, &b = b] {
    b.async_receive_provided(pool, [&](error_code ec, provided_buffer buf) {
      result = ec;
      BOOST_TEST(buf.empty());
    });
    t.expires_after(20ms);
    t.async_wait([&](error_code) { b.close(); });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
  // Both buffers are still in the pool.
  auto [c, d] = zokio_test::connected_pair(ctx);
  expect_free_buffers(ctx, c, d, pool, 2);
}

BOOST_AUTO_TEST_CASE(destroying_the_socket_with_a_pending_receive)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 2);
  error_code result;
  {
    tcp::socket doomed(std::move(b));
    asio::post(ctx, [&] {
      doomed.async_receive_provided(pool, [&](error_code ec, provided_buffer) { result = ec; });
    });
    ctx.poll();
  }
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::operation_aborted);
  auto [c, d] = zokio_test::connected_pair(ctx);
  expect_free_buffers(ctx, c, d, pool, 2);
}

BOOST_AUTO_TEST_CASE(receive_on_a_closed_socket)
{
  zokio::io_context ctx;
  tcp::socket s(ctx);
  provided_buffer_pool pool(ctx, 64, 2);
  error_code result;
  s.async_receive_provided(pool, [&](error_code ec, provided_buffer) { result = ec; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::bad_descriptor);
}

BOOST_AUTO_TEST_CASE(end_of_stream_gives_the_buffer_back)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 1);
  error_code result;
  asio::post(ctx, [&, &a = a, &b = b] {
    b.async_receive_provided(pool, [&](error_code ec, provided_buffer buf) {
      result = ec;
      BOOST_TEST(buf.empty());
    });
    a.close();
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(result == asio::error::eof);
  auto [c, d] = zokio_test::connected_pair(ctx);
  expect_free_buffers(ctx, c, d, pool, 1);
}

BOOST_AUTO_TEST_CASE(buffers_released_on_another_thread_come_back)
{
  // The handler hands each buffer to another thread, which releases it
  // there (the pool's returned stack, drained by the next receive).
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 16, 2);
  const std::size_t total = 64 * 1024;
  auto stream = make_stream(total);
  std::size_t received = 0, mismatches = 0;
  asio::async_write(a, asio::buffer(stream), [&, &a = a](error_code ec, std::size_t) {
    BOOST_TEST(!ec);
    a.shutdown(tcp::socket::shutdown_send);
  });
  asio::co_spawn(ctx, [&, &b = b]() -> asio::awaitable<void> {
    for (;;)
    {
      auto [ec, buf] = co_await b.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::eof)
        break;
      if (ec == asio::error::no_buffer_space)
      {
        std::this_thread::yield();
        continue;
      }
      BOOST_REQUIRE(!ec);
      auto* p = static_cast<const unsigned char*>(buf.data());
      for (std::size_t i = 0; i < buf.size(); ++i)
        if (p[i] != pattern(received + i))
          ++mismatches;
      received += buf.size();
      std::thread([buf = std::move(buf)]() mutable { buf.release(); }).join();
    }
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(received == total);
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(every_token_delivers_the_data)
{
  zokio::io_context ctx;
  auto [a, b] = zokio_test::connected_pair(ctx);
  provided_buffer_pool pool(ctx, 64, 4);
  std::string got;
  asio::co_spawn(ctx, [&, &a = a, &b = b]() -> asio::awaitable<void> {
    auto take = [&](const provided_buffer& buf) {
      got.append(static_cast<const char*>(buf.data()), buf.size());
      got += '|';
    };
    co_await asio::async_write(a, asio::buffer("1", 1), asio::use_awaitable);
    take(co_await b.async_receive_provided(pool, asio::use_awaitable));
    co_await asio::async_write(a, asio::buffer("2", 1), asio::use_awaitable);
    take(co_await b.async_receive_provided(pool, zokio::use_future));
    co_await asio::async_write(a, asio::buffer("3", 1), asio::use_awaitable);
    take(co_await b.async_receive_provided(pool, asio::deferred));
    co_await asio::async_write(a, asio::buffer("4", 1), asio::use_awaitable);
    error_code ec;
    take(co_await b.async_receive_provided(pool, asio::redirect_error(asio::use_awaitable, ec)));
    BOOST_TEST(!ec);
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(got == "1|2|3|4|");

  // asio::use_future, waited on outside the loop.
  a.write_some(asio::buffer("5", 1));
  std::future<provided_buffer> f = b.async_receive_provided(pool, asio::use_future);
  ctx.restart();
  zokio_test::run_bounded(ctx);
  provided_buffer buf = f.get();
  BOOST_TEST(std::string(static_cast<const char*>(buf.data()), buf.size()) == "5");
}

BOOST_AUTO_TEST_CASE(echo_on_a_thread_pool)
{
  // Receives started on every worker are routed to the pool's home ring;
  // 16 connections x 64 KiB, every byte verified.
  zokio::thread_pool tp(2);
  provided_buffer_pool pool(tp, 512, 64);
  constexpr int conns = 16;
  const std::size_t per_conn = 64 * 1024;
  auto stream = make_stream(per_conn);
  std::atomic<int> done{0};
  std::atomic<std::size_t> mismatches{0}, received{0};
  // Handlers run on the pool's workers, and Boost.Test's assertions are not
  // thread-safe: they count errors, the test thread checks the counts.
  std::atomic<int> write_errors{0}, receive_errors{0};
  std::vector<std::pair<tcp::socket, tcp::socket>> pairs;
  for (int i = 0; i < conns; ++i)
    pairs.push_back(zokio_test::connected_pair(tp));
  for (auto& [w, r] : pairs)
  {
    asio::async_write(w, asio::buffer(stream), [&w = w, &write_errors](error_code ec, std::size_t) {
      if (ec)
        ++write_errors;
      w.shutdown(tcp::socket::shutdown_send);
    });
    asio::co_spawn(tp, [&, &r = r]() -> asio::awaitable<void> {
      std::size_t at = 0;
      for (;;)
      {
        auto [ec, buf] = co_await r.async_receive_provided(pool, asio::as_tuple(asio::use_awaitable));
        if (ec == asio::error::eof)
          break;
        if (ec == asio::error::no_buffer_space)
          continue;  // another connection holds them for a moment
        if (ec)
        {
          ++receive_errors;
          break;
        }
        auto* p = static_cast<const unsigned char*>(buf.data());
        for (std::size_t i = 0; i < buf.size(); ++i)
          if (p[i] != pattern(at + i))
            ++mismatches;
        at += buf.size();
      }
      received += at;
      ++done;
    }, asio::detached);
  }
  for (int i = 0; i < 2000 && done.load() < conns; ++i)
    std::this_thread::sleep_for(10ms);
  BOOST_TEST(done.load() == conns);
  BOOST_TEST(write_errors.load() == 0);
  BOOST_TEST(receive_errors.load() == 0);
  BOOST_TEST(received.load() == conns * per_conn);
  BOOST_TEST(mismatches.load() == 0u);
  tp.stop();
  tp.join();
}
