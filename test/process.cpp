// Tests of zokio::process: spawning, standard streams through zokio pipes,
// waiting for the exit, signals, and no zombie or descriptor left behind.
#include <zokio/connect_pipe.hpp>
#include <zokio/process.hpp>
#include <zokio/readable_pipe.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/writable_pipe.hpp>

// Boost.Process v2 (header-only, std::filesystem paths) on zokio contexts.
#define BOOST_PROCESS_USE_STD_FS 1
// (Boost 1.81's v2 headers use these without including them.)
#include <boost/optional.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/process/v2/process.hpp>

#define BOOST_TEST_MODULE process
#include <boost/test/unit_test.hpp>

#include <support/descriptors.hpp>
#include <support/run.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <fcntl.h>
#include <zokio/backend.hpp>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

namespace {

using zokio_test::open_descriptors;

// Whether pid is a zombie child of this process (or any child: -1).
bool has_zombie_children()
{
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

// libkqueue (the kqueue backend on Linux) frees the descriptors of a closed
// kqueue asynchronously, so counts taken there drift with earlier cases.
bool counts_descriptors()
{
  return zokio::current_backend().backend != zokio::backend::kqueue;
}

std::string all_of(asio::streambuf& sb)
{
  return std::string(asio::buffers_begin(sb.data()), asio::buffers_end(sb.data()));
}

} // namespace

BOOST_AUTO_TEST_CASE(exit_codes_and_signals_arrive_through_async_wait)
{
  zokio::io_context ctx;
  zokio::process ok(ctx, "/bin/sh", {"-c", "exit 0"});
  zokio::process seven(ctx, "sh", {"-c", "exit 7"});  // looked up in PATH
  zokio::process sleeper(ctx, "/bin/sleep", {"30"});
  int a = -1, b = -1, c = -1;
  error_code ea, eb, ec;
  ok.async_wait([&](error_code e, int code) { ea = e; a = code; });
  seven.async_wait([&](error_code e, int code) { eb = e; b = code; });
  sleeper.async_wait([&](error_code e, int code) { ec = e; c = code; });
  zokio::steady_timer t(ctx, 20ms);
  t.async_wait([&](error_code) { sleeper.request_exit(); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!ea);
  BOOST_TEST(a == 0);
  BOOST_TEST(!eb);
  BOOST_TEST(b == 7);
  BOOST_TEST(!ec);
  BOOST_TEST(c == 128 + SIGTERM);
  BOOST_TEST(WIFSIGNALED(sleeper.native_exit_code()));
  BOOST_TEST(seven.exit_code() == 7);
  BOOST_TEST(!seven.running());
  error_code gone;
  seven.terminate(gone);
  BOOST_TEST(gone.value() == ESRCH, "a reaped child is not signalled");
}

BOOST_AUTO_TEST_CASE(stdin_stdout_and_stderr_through_zokio_pipes)
{
  zokio::io_context ctx;
  zokio::writable_pipe in(ctx);
  zokio::readable_pipe out(ctx), err(ctx);
  const int before = open_descriptors();
  zokio::process p(ctx, "/bin/sh", {"-c", "tr a-z A-Z; echo oops >&2"},
      zokio::process_options{.stdio = {in, out, err}});
  BOOST_TEST(in.is_open());
  BOOST_TEST(out.is_open());
  BOOST_TEST(err.is_open());
  // Three pipe ends and a pidfd (none without pidfds), no child end.
  const bool pidfd = std::getenv("ZOKIO_PROCESS_NO_PIDFD") == nullptr;
  if (counts_descriptors())
    BOOST_TEST(open_descriptors() == before + 3 + (pidfd ? 1 : 0));
  asio::streambuf out_buf, err_buf;
  error_code oe, ee;
  int code = -1;
  const std::string text = "hello zokio\n";
  asio::async_write(in, asio::buffer(text), [&](error_code e, std::size_t) {
    BOOST_TEST(!e);
    in.close();
  });
  asio::async_read(out, out_buf, [&](error_code e, std::size_t) { oe = e; });
  asio::async_read(err, err_buf, [&](error_code e, std::size_t) { ee = e; });
  p.async_wait([&](error_code, int c) { code = c; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(oe == asio::error::eof);
  BOOST_TEST(ee == asio::error::eof);
  BOOST_TEST(all_of(out_buf) == "HELLO ZOKIO\n");
  BOOST_TEST(all_of(err_buf) == "oops\n");
  BOOST_TEST(code == 0);
}

BOOST_AUTO_TEST_CASE(environment_working_directory_and_null_streams)
{
  zokio::io_context ctx;
  zokio::readable_pipe out(ctx);
  auto dir = std::filesystem::temp_directory_path();
  zokio::process p(ctx, "/bin/sh", {"-c", "echo \"$ZOKIO_TEST_VAR:$(pwd)\"; cat; echo hidden >&2"},
      zokio::process_options{
          .environment = std::vector<std::string>{"ZOKIO_TEST_VAR=42", "PATH=/usr/bin:/bin"},
          .working_directory = dir.string(),
          .stdio = {zokio::process_stdio_target::null(), out, zokio::process_stdio_target::null()}});
  asio::streambuf sb;
  asio::async_read(out, sb, [](error_code, std::size_t) {});
  int code = -1;
  p.async_wait([&](error_code, int c) { code = c; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(code == 0);
  BOOST_TEST(all_of(sb) == "42:" + std::filesystem::canonical(dir).string() + "\n");
}

BOOST_AUTO_TEST_CASE(a_failed_spawn_throws_and_leaves_nothing_behind)
{
  zokio::io_context ctx;
  zokio::readable_pipe out(ctx);
  const int before = open_descriptors();
  try
  {
    zokio::process p(ctx, "/nonexistent/program", {}, zokio::process_options{.stdio = {{}, out, {}}});
    BOOST_FAIL("no exception");
  }
  catch (const boost::system::system_error& e)
  {
    BOOST_TEST(e.code().value() == ENOENT);
  }
  BOOST_CHECK_THROW(zokio::process(ctx, "no-such-program-zokio"), boost::system::system_error);
  BOOST_CHECK_THROW(zokio::process(ctx, "/bin/true", {},
                        zokio::process_options{.working_directory = "/nonexistent/dir"}),
      boost::system::system_error);
  BOOST_TEST(!out.is_open());
  if (counts_descriptors())
    BOOST_TEST(open_descriptors() == before);
  BOOST_TEST(!has_zombie_children());
}

BOOST_AUTO_TEST_CASE(a_wait_can_be_cancelled_and_the_child_keeps_running)
{
  zokio::io_context ctx;
  zokio::process p(ctx, "/bin/sleep", {"30"});
  asio::cancellation_signal sig;
  error_code ec;
  p.async_wait(asio::bind_cancellation_slot(sig.slot(), [&](error_code e, int) { ec = e; }));
  zokio::steady_timer t(ctx, 10ms);
  t.async_wait([&](error_code) { sig.emit(asio::cancellation_type::terminal); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::operation_aborted);
  BOOST_TEST(p.running());
  p.terminate();
  BOOST_TEST(p.wait() == 128 + SIGKILL);
}

BOOST_AUTO_TEST_CASE(no_zombie_when_the_object_or_the_context_goes_first)
{
  const int before = open_descriptors();
  pid_t a, b;
  std::optional<zokio::io_context> ctx(std::in_place);
  {
    zokio::process p(*ctx, "/bin/sleep", {"30"});
    a = p.id();
  }  // never waited for: killed and reaped
  BOOST_TEST(::kill(a, 0) != 0);
  auto orphan = std::make_unique<zokio::process>(*ctx, "/bin/sleep", std::vector<std::string>{"30"});
  b = orphan->id();
  error_code ec;
  orphan->async_wait([&](error_code e, int) { ec = e; });  // destroyed unrun with the context
  ctx.reset();
  BOOST_TEST(::kill(b, 0) != 0, "the context's shutdown killed and reaped the child");
  BOOST_TEST(orphan->exit_code() == 128 + SIGKILL);
  orphan.reset();  // touches only its own state
  BOOST_TEST(!has_zombie_children());
  if (counts_descriptors())
    BOOST_TEST(open_descriptors() == before);
}

BOOST_AUTO_TEST_CASE(a_pipeline_of_two_children)
{
  // The pipe between the children is made blocking, as programs expect
  // their standard streams (not a zokio pipe: on epoll and kqueue those are
  // non-blocking, and a descriptor handed over shares that mode).
  zokio::io_context ctx;
  zokio::readable_pipe out(ctx);
  int mid[2];
  BOOST_REQUIRE(::pipe2(mid, O_CLOEXEC) == 0);
  zokio::process producer(ctx, "/bin/sh", {"-c", "printf 'b\\na\\nc\\n'"},
      zokio::process_options{.stdio = {{}, zokio::process_stdio_target::native(mid[1]), {}}});
  zokio::process sorter(ctx, "sort", {},
      zokio::process_options{.stdio = {zokio::process_stdio_target::native(mid[0]), out, {}}});
  ::close(mid[0]);
  ::close(mid[1]);
  asio::streambuf sb;
  asio::async_read(out, sb, [](error_code, std::size_t) {});
  int c1 = -1, c2 = -1;
  producer.async_wait([&](error_code, int c) { c1 = c; });
  sorter.async_wait([&](error_code, int c) { c2 = c; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(c1 == 0);
  BOOST_TEST(c2 == 0);
  BOOST_TEST(all_of(sb) == "a\nb\nc\n");
}

BOOST_AUTO_TEST_CASE(children_on_a_thread_pool_with_futures)
{
  zokio::thread_pool pool(2);
  std::vector<zokio::process> ps;
  std::vector<std::future<int>> fs;
  for (int i = 0; i < 8; ++i)
  {
    ps.emplace_back(pool, "/bin/sh", std::vector<std::string>{"-c", "exit " + std::to_string(i)});
    fs.push_back(ps.back().async_wait(asio::use_future));
  }
  for (int i = 0; i < 8; ++i)
  {
    BOOST_TEST((fs[i].wait_for(10s) == std::future_status::ready));
    BOOST_TEST(fs[i].get() == i);
  }
  pool.join();
}

BOOST_AUTO_TEST_CASE(boost_process_v2_spawns_and_waits_on_a_zokio_context_and_pool)
{
  namespace bp = boost::process::v2;
  zokio::io_context ctx;
  bp::process p(ctx.get_executor(), "/bin/sh", {"-c", "exit 3"});
  int code = -1;
  error_code ec = asio::error::would_block;
  p.async_wait([&](error_code e, int c) {
    ec = e;
    code = c;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!ec);
  BOOST_TEST(code == 3);

  zokio::thread_pool pool(2);
  bp::process q(pool.get_executor(), "/bin/sh", {"-c", "exit 5"});
  auto f = q.async_wait(asio::use_future);
  BOOST_TEST((f.wait_for(10s) == std::future_status::ready));
  BOOST_TEST(f.get() == 5);
  pool.join();
  BOOST_TEST(!has_zombie_children());
}

BOOST_AUTO_TEST_CASE(the_wait_uses_waitid_where_the_ring_has_it)
{
  // One request that waits and reaps (IORING_OP_WAITID, linux 6.7) where
  // the ring has it, else a pidfd poll: the same outcome, and the counters
  // say which: no poll, so no waitpid, with waitid.
  zokio::io_context ctx;
  zokio::process p(ctx, "/bin/sh", {"-c", "sleep 0.05; exit 4"});
  int code = -1;
  p.async_wait([&](error_code, int c) { code = c; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(code == 4);
  BOOST_TEST(WIFEXITED(p.native_exit_code()));
  const bool waitid = zokio::detail::waits_with_waitid(zokio::current_backend().backend);
  BOOST_TEST_MESSAGE("IORING_OP_WAITID " << (waitid ? "used" : "not available here: pidfd poll or SIGCHLD"));
  if (!waitid && zokio::current_backend().backend == zokio::backend::io_uring
      && std::getenv("ZOKIO_NET_FEATURES") == nullptr)
    BOOST_TEST_MESSAGE("this kernel has no IORING_OP_WAITID (before 6.7)");
  // A child killed while the ring waits reports the signal.
  zokio::process q(ctx, "/bin/sleep", {"30"});
  ctx.restart();
  q.async_wait([&](error_code, int c) { code = c; });
  zokio::steady_timer t(ctx, std::chrono::milliseconds(10));
  t.async_wait([&](error_code) { q.terminate(); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(code == 128 + SIGKILL);
  BOOST_TEST(WIFSIGNALED(q.native_exit_code()));
  BOOST_TEST(WTERMSIG(q.native_exit_code()) == SIGKILL);
}
