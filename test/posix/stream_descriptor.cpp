// Tests of zokio::posix::stream_descriptor and the pipes (readable_pipe,
// writable_pipe, connect_pipe) on every backend.
#include <zokio/connect_pipe.hpp>
#include <zokio/posix/stream_descriptor.hpp>
#include <zokio/readable_pipe.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/writable_pipe.hpp>

#define BOOST_TEST_MODULE posix_stream_descriptor
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <csignal>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

// The default action of SIGPIPE (end the process) for the whole suite: a
// write that raised it would end the run instead of passing.
struct sigpipe_default
{
  sigpipe_default() { std::signal(SIGPIPE, SIG_DFL); }
};
BOOST_TEST_GLOBAL_FIXTURE(sigpipe_default);

std::vector<char> pattern(std::size_t n)
{
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<char>((i * 7919u) >> 3);
  return v;
}

bool open_fd(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

} // namespace

//------------------------------------------------------------------------------
// Compile section: the names and signatures of Asio's types.

namespace compile {

static_assert(std::is_same_v<zokio::posix::stream_descriptor::native_handle_type, int>);
static_assert(std::is_same_v<zokio::readable_pipe::lowest_layer_type, zokio::readable_pipe>);
static_assert(std::is_same_v<zokio::posix::stream_descriptor::wait_type,
    asio::posix::descriptor_base::wait_type>);
static_assert(!std::is_copy_constructible_v<zokio::writable_pipe>);
static_assert(std::is_nothrow_move_constructible_v<zokio::readable_pipe>);

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::posix::stream_descriptor& d,
    zokio::readable_pipe& r, zokio::writable_pipe& w)
{
  char buf[16];
  std::size_t n = co_await d.async_read_some(asio::buffer(buf), asio::use_awaitable);
  n += co_await d.async_write_some(asio::buffer(buf), asio::use_awaitable);
  co_await d.async_wait(zokio::posix::stream_descriptor::wait_read, asio::use_awaitable);
  n += co_await r.async_read_some(asio::buffer(buf), asio::use_awaitable);
  n += co_await w.async_write_some(asio::buffer(buf), asio::use_awaitable);
  n += co_await asio::async_read(r, asio::buffer(buf), asio::use_awaitable);
  n += co_await asio::async_write(w, asio::buffer(buf), asio::use_awaitable);
  auto [ec, m] = co_await r.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
  (void)ec;
  (void)m;
  (void)n;
}

} // namespace compile

//------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_pipe_carries_one_mebibyte_through_composed_operations)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  BOOST_TEST(r.is_open());
  BOOST_TEST(w.is_open());

  const auto out = pattern(1 << 20);
  std::vector<char> in(out.size());
  error_code wec, rec;
  std::size_t written = 0, read = 0;
  // Several buffers per write (writev) and per read (readv).
  std::array<asio::const_buffer, 3> outs{asio::buffer(out.data(), 1000),
      asio::buffer(out.data() + 1000, 300000), asio::buffer(out.data() + 301000, out.size() - 301000)};
  std::array<asio::mutable_buffer, 2> ins{asio::buffer(in.data(), 4097),
      asio::buffer(in.data() + 4097, in.size() - 4097)};
  asio::async_write(w, outs, [&](error_code ec, std::size_t n) {
    wec = ec;
    written = n;
    w.close();
  });
  asio::async_read(r, ins, [&](error_code ec, std::size_t n) {
    rec = ec;
    read = n;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!wec);
  BOOST_TEST(!rec);
  BOOST_TEST(written == out.size());
  BOOST_TEST(read == in.size());
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(the_end_of_a_pipe_is_eof_and_the_data_before_it_arrives)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  w.write_some(asio::buffer("hello", 5));
  w.close();
  asio::streambuf sb;
  error_code ec;
  std::size_t n = 99;
  asio::async_read(r, sb, [&](error_code e, std::size_t m) {
    ec = e;
    n = m;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::eof);
  BOOST_TEST(n == 5u);
  BOOST_TEST(std::string(asio::buffers_begin(sb.data()), asio::buffers_end(sb.data())) == "hello");

  // Every later read sees the end again; a synchronous one too.
  char c;
  r.read_some(asio::buffer(&c, 1), ec);
  BOOST_TEST(ec == asio::error::eof);
}

BOOST_AUTO_TEST_CASE(a_write_after_the_reader_has_gone_is_broken_pipe_not_a_signal)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  r.close();
  error_code ec;
  std::size_t n = 99;
  w.async_write_some(asio::buffer("x", 1), [&](error_code e, std::size_t m) {
    ec = e;
    n = m;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::broken_pipe);
  BOOST_TEST(n == 0u);

  // Synchronous too, and no SIGPIPE is left pending or blocked afterwards.
  w.write_some(asio::buffer("x", 1), ec);
  BOOST_TEST(ec == asio::error::broken_pipe);
  sigset_t pending, mask;
  ::sigpending(&pending);
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  BOOST_TEST(!sigismember(&pending, SIGPIPE));
  BOOST_TEST(!sigismember(&mask, SIGPIPE), "the thread's mask is restored after the run");
}

BOOST_AUTO_TEST_CASE(a_write_blocked_on_a_full_pipe_gets_broken_pipe_when_the_reader_closes)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  const auto out = pattern(4 << 20);  // more than any pipe holds
  error_code ec;
  std::size_t n = 0;
  asio::async_write(w, asio::buffer(out), [&](error_code e, std::size_t m) {
    ec = e;
    n = m;
  });
  zokio::steady_timer t(ctx, 20ms);
  t.async_wait([&](error_code) { r.close(); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::broken_pipe);
  BOOST_TEST(n < out.size());
}

BOOST_AUTO_TEST_CASE(cancel_close_and_release_abort_a_pending_read)
{
  for (int how = 0; how < 3; ++how)
  {
    BOOST_TEST_CONTEXT("how " << how)
    {
      zokio::io_context ctx;
      zokio::readable_pipe r(ctx);
      zokio::writable_pipe w(ctx);
      zokio::connect_pipe(r, w);
      const int rfd = r.native_handle();
      char buf[8];
      error_code ec;
      r.async_read_some(asio::buffer(buf), [&](error_code e, std::size_t) { ec = e; });
      zokio::steady_timer t(ctx, 5ms);
      int released = -1;
      t.async_wait([&](error_code) {
        if (how == 0)
          r.cancel();
        else if (how == 1)
          r.close();
        else
          released = r.release();
      });
      zokio_test::run_bounded(ctx);
      BOOST_TEST(ec == asio::error::operation_aborted);
      if (how == 0)
        BOOST_TEST(r.is_open());
      else
        BOOST_TEST(!r.is_open());
      if (how == 1)
        BOOST_TEST(!open_fd(rfd), "closed once the read came back");
      if (how == 2)
      {
        BOOST_TEST(released == rfd);
        BOOST_TEST(open_fd(rfd), "a released descriptor stays open");
        ::close(rfd);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(per_operation_cancellation_at_every_stage)
{
  for (auto stage : zokio_test::cancel_stages)
  {
    BOOST_TEST_CONTEXT("stage " << static_cast<int>(stage))
    {
      zokio::io_context ctx;
      zokio::readable_pipe r(ctx);
      zokio::writable_pipe w(ctx);
      zokio::connect_pipe(r, w);
      asio::cancellation_signal sig;
      char buf[8];
      error_code ec;
      bool called = false;
      zokio_test::start_and_cancel(
          ctx, stage,
          [&] {
            r.async_read_some(asio::buffer(buf),
                asio::bind_cancellation_slot(sig.slot(), [&](error_code e, std::size_t) {
                  ec = e;
                  called = true;
                }));
          },
          [&] { sig.emit(asio::cancellation_type::terminal); });
      BOOST_TEST(called);
      BOOST_TEST(ec == asio::error::operation_aborted);

      // The pipe still works afterwards.
      w.write_some(asio::buffer("z", 1));
      ctx.restart();
      std::size_t n = 0;
      r.async_read_some(asio::buffer(buf), [&](error_code e, std::size_t m) {
        ec = e;
        n = m;
      });
      zokio_test::run_bounded(ctx);
      BOOST_TEST(!ec);
      BOOST_TEST(n == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(awaitable_operators_cancel_the_loser)
{
  using namespace asio::experimental::awaitable_operators;
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  bool timed_out = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    char buf[8];
    zokio::steady_timer t(ctx, 10ms);
    auto v = co_await (r.async_read_some(asio::buffer(buf), asio::use_awaitable)
        || t.async_wait(asio::use_awaitable));
    timed_out = v.index() == 1;
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(timed_out);
}

BOOST_AUTO_TEST_CASE(async_wait_reports_readiness)
{
  zokio::io_context ctx;
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  zokio::posix::stream_descriptor r(ctx, fds[0]), w(ctx.get_executor(), fds[1]);
  error_code wec = asio::error::would_block, rec = asio::error::would_block;
  bool write_first = false;
  w.async_wait(zokio::posix::stream_descriptor::wait_write, [&](error_code e) {
    wec = e;
    write_first = rec == asio::error::would_block;
    w.write_some(asio::buffer("r", 1));
  });
  r.async_wait(zokio::posix::stream_descriptor::wait_read, [&](error_code e) { rec = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!wec);
  BOOST_TEST(!rec);
  BOOST_TEST(write_first, "the read end became ready only after the write");
  char c = 0;
  BOOST_TEST(r.read_some(asio::buffer(&c, 1)) == 1u);
  BOOST_TEST(c == 'r');
}

BOOST_AUTO_TEST_CASE(an_eventfd_is_read_as_a_stream_descriptor)
{
  zokio::io_context ctx;
  int efd = ::eventfd(0, EFD_CLOEXEC);
  BOOST_REQUIRE(efd >= 0);
  zokio::posix::stream_descriptor e(ctx, efd);
  std::uint64_t value = 0;
  error_code ec;
  e.async_read_some(asio::buffer(&value, sizeof(value)), [&](error_code x, std::size_t) { ec = x; });
  zokio::steady_timer t(ctx, 5ms);
  t.async_wait([&](error_code) {
    std::uint64_t three = 3;
    BOOST_TEST(::write(efd, &three, sizeof(three)) == 8);
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!ec);
  BOOST_TEST(value == 3u);
}

BOOST_AUTO_TEST_CASE(a_descriptor_the_user_made_non_blocking_still_waits)
{
  // O_NONBLOCK set before zokio sees it (a shared stdin, a pipe from
  // another library): the reads still wait for data (on io_uring, a kernel
  // that refuses them with EAGAIN gets a poll and a retry; the
  // ZOKIO_URING_RW_NOWAIT=1 variant of this suite forces that path).
  zokio::io_context ctx;
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  zokio::posix::stream_descriptor r(ctx, fds[0]), w(ctx, fds[1]);
  std::string got;
  error_code ec;
  std::array<char, 4> buf{};
  std::function<void()> read_more = [&] {
    r.async_read_some(asio::buffer(buf), [&](error_code e, std::size_t n) {
      ec = e;
      got.append(buf.data(), n);
      if (!e)
        read_more();
    });
  };
  read_more();
  zokio::steady_timer t(ctx, 5ms);
  int step = 0;
  std::function<void(error_code)> tick = [&](error_code) {
    if (step++ < 3)
    {
      w.write_some(asio::buffer("abcdef", 6));
      t.expires_after(5ms);
      t.async_wait(tick);
    }
    else
      w.close();
  };
  t.async_wait(tick);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::eof);
  BOOST_TEST(got == "abcdefabcdefabcdef");

  // Also for writes: fill the pipe, then a write waits until it drains.
  int p2[2];
  BOOST_REQUIRE(::pipe2(p2, O_CLOEXEC | O_NONBLOCK) == 0);
  zokio::posix::stream_descriptor r2(ctx, p2[0]), w2(ctx, p2[1]);
  const auto out = pattern(1 << 20);
  std::vector<char> in(out.size());
  error_code wec, rec;
  ctx.restart();
  asio::async_write(w2, asio::buffer(out), [&](error_code e, std::size_t) { wec = e; });
  zokio::steady_timer later(ctx, 10ms);
  later.async_wait([&](error_code) {
    asio::async_read(r2, asio::buffer(in), [&](error_code e, std::size_t) { rec = e; });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!wec);
  BOOST_TEST(!rec);
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(zero_length_transfers_complete_at_once)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  error_code rec = asio::error::would_block, wec = asio::error::would_block;
  std::size_t rn = 9, wn = 9;
  r.async_read_some(asio::mutable_buffer(), [&](error_code e, std::size_t n) { rec = e; rn = n; });
  w.async_write_some(asio::const_buffer(), [&](error_code e, std::size_t n) { wec = e; wn = n; });
  BOOST_TEST(rec == asio::error::would_block, "not inside the initiating function");
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!rec);
  BOOST_TEST(!wec);
  BOOST_TEST(rn == 0u);
  BOOST_TEST(wn == 0u);
}

BOOST_AUTO_TEST_CASE(errors_on_closed_and_doubly_assigned_objects)
{
  zokio::io_context ctx;
  zokio::posix::stream_descriptor d(ctx);
  BOOST_TEST(!d.is_open());
  error_code ec;
  char c;
  d.read_some(asio::buffer(&c, 1), ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  d.write_some(asio::buffer(&c, 1), ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  d.cancel(ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  d.close(ec);
  BOOST_TEST(!ec, "closing a closed descriptor succeeds");
  d.assign(-1, ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  error_code aec, wec;
  d.async_read_some(asio::buffer(&c, 1), [&](error_code e, std::size_t) { aec = e; });
  d.async_wait(zokio::posix::stream_descriptor::wait_read, [&](error_code e) { wec = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(aec == asio::error::bad_descriptor);
  BOOST_TEST(wec == asio::error::bad_descriptor);

  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  zokio::connect_pipe(r, w, ec);
  BOOST_TEST(ec == asio::error::already_open);
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  r.assign(fds[0], ec);
  BOOST_TEST(ec == asio::error::already_open);
  BOOST_CHECK_THROW(r.assign(fds[0]), boost::system::system_error);
  ::close(fds[0]);
  ::close(fds[1]);
}

BOOST_AUTO_TEST_CASE(moved_objects_keep_their_pending_operations)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::basic_writable_pipe<zokio::io_context::executor_type> w(ctx);
  zokio::connect_pipe(r, w);
  char buf[4];
  std::size_t n = 0;
  r.async_read_some(asio::buffer(buf), [&](error_code, std::size_t m) { n = m; });
  zokio::readable_pipe r2(std::move(r));
  BOOST_TEST(!r.is_open());
  BOOST_TEST(r2.is_open());
  zokio::writable_pipe w2(std::move(w));
  w2.write_some(asio::buffer("abc", 3));
  zokio_test::run_bounded(ctx);
  BOOST_TEST(n == 3u);
}

BOOST_AUTO_TEST_CASE(use_future_from_another_thread)
{
  zokio::io_context ctx;
  zokio::readable_pipe r(ctx);
  zokio::writable_pipe w(ctx);
  zokio::connect_pipe(r, w);
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  char buf[8];
  auto f = r.async_read_some(asio::buffer(buf), asio::use_future);
  BOOST_TEST(w.write_some(asio::buffer("future", 6)) == 6u);
  BOOST_TEST(f.get() == 6u);
  BOOST_TEST(std::string(buf, 6) == "future");
  guard.reset();
  ctx.stop();
  runner.join();
}

BOOST_AUTO_TEST_CASE(pipes_on_a_thread_pool)
{
  // Writers and readers on two workers: every byte arrives once, in order
  // per pipe.
  zokio::thread_pool pool(2);
  constexpr int pipes = 8;
  std::vector<zokio::readable_pipe> rs;
  std::vector<zokio::writable_pipe> ws;
  for (int i = 0; i < pipes; ++i)
  {
    rs.emplace_back(pool);
    ws.emplace_back(pool);
    zokio::connect_pipe(rs.back(), ws.back());
  }
  const auto out = pattern(256 << 10);
  std::vector<std::vector<char>> in(pipes, std::vector<char>(out.size()));
  std::atomic<int> ok{0};
  for (int i = 0; i < pipes; ++i)
  {
    asio::co_spawn(pool, [&, i]() -> asio::awaitable<void> {
      co_await asio::async_write(ws[i], asio::buffer(out), asio::use_awaitable);
      ws[i].close();
    }, asio::detached);
    asio::co_spawn(pool, [&, i]() -> asio::awaitable<void> {
      co_await asio::async_read(rs[i], asio::buffer(in[i]), asio::use_awaitable);
      if (in[i] == out)
        ++ok;
    }, asio::detached);
  }
  pool.join();
  BOOST_TEST(ok.load() == pipes);
}
