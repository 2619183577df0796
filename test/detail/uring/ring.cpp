// Tests of the ring core: setup with fallback, a full submission queue, an
// overflowing completion queue, and io_uring refused by the kernel.
#include <detail/backend_select.hpp>
#include <detail/uring/driver.hpp>

#define BOOST_TEST_MODULE detail_uring_ring
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>
#include <support/seccomp.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using error_code = boost::system::error_code;

BOOST_AUTO_TEST_CASE(ring_uses_the_best_flags_the_kernel_accepts)
{
  zokio::detail::uring::ring r;
  unsigned flags = r.setup_flags();
  BOOST_TEST_MESSAGE("setup flags: 0x" << std::hex << flags);
  // Whatever the kernel, the ring must report the features it was made with.
  BOOST_TEST((r.features() & IORING_FEAT_NODROP) != 0u);
  if (flags & IORING_SETUP_DEFER_TASKRUN)
    BOOST_TEST((flags & IORING_SETUP_SINGLE_ISSUER) != 0u);
}

BOOST_AUTO_TEST_CASE(basic_setup_can_be_forced)
{
  ::setenv("ZOKIO_URING_SETUP", "basic", 1);
  zokio::detail::uring::ring r;
  ::unsetenv("ZOKIO_URING_SETUP");
  BOOST_TEST((r.setup_flags() & ~IORING_SETUP_CQSIZE) == 0u);
  // A context on plain rings still works.
  ::setenv("ZOKIO_URING_SETUP", "basic", 1);
  zokio::io_context ctx;
  ::unsetenv("ZOKIO_URING_SETUP");
  int done = 0;
  asio::post(ctx, [&] { zokio::detail::async_nop(ctx.get_executor(), [&](error_code ec) { done += !ec; }); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(done == 1);
}

// Starts n NOPs from one handler and counts successful completions.
static int burst_of_nops(zokio::io_context& ctx, int n)
{
  int done = 0;
  asio::post(ctx, [&] {
    for (int i = 0; i < n; ++i)
      zokio::detail::async_nop(ctx.get_executor(), [&](error_code ec) { done += !ec; });
  });
  zokio_test::run_bounded(ctx);
  return done;
}

BOOST_AUTO_TEST_CASE(full_submission_queue_drops_nothing)
{
  zokio::io_context ctx(-1, zokio::ring_options{4, 0}); // 4 SQEs
  BOOST_TEST(burst_of_nops(ctx, 10000) == 10000);
  auto s = ctx.statistics();
  BOOST_TEST(s.submissions >= 10000u);
  BOOST_TEST(s.completions >= 10000u);
}

BOOST_AUTO_TEST_CASE(completion_queue_overflow_loses_nothing)
{
  // 64 CQEs for 10,000 NOPs started before the loop reaps anything.
  zokio::io_context ctx(-1, zokio::ring_options{64, 64});
  BOOST_TEST(burst_of_nops(ctx, 10000) == 10000);
}

BOOST_AUTO_TEST_CASE(kernel_operations_started_from_another_thread)
{
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::atomic<int> done{0};
  std::thread runner([&] { ctx.run(); });
  for (int i = 0; i < 1000; ++i)
    zokio::detail::async_nop(ctx.get_executor(), [&](error_code ec) { done += !ec; });
  while (done.load() < 1000)
    std::this_thread::yield();
  guard.reset();
  runner.join();
  BOOST_TEST(done.load() == 1000);
}

BOOST_AUTO_TEST_CASE(io_wq_workers_are_bounded)
{
  zokio::io_context ctx;
  unsigned limits[2] = {0, 0};
  int r = -1;
  asio::post(ctx, [&] {
    auto* runner = ctx.impl().this_thread_runner();
    r = ::io_uring_register_iowq_max_workers(runner->uring_driver().get(), limits); // 0,0 = query
  });
  zokio_test::run_bounded(ctx);
  if (r == -EINVAL)
  {
    BOOST_TEST_MESSAGE("skipped: kernel without IORING_REGISTER_IOWQ_MAX_WORKERS (5.15)");
    return;
  }
  BOOST_TEST(r == 0);
  BOOST_TEST(limits[0] > 0u);
  BOOST_TEST(limits[0] <= 1024u);
  BOOST_TEST(limits[1] > 0u);
  BOOST_TEST(limits[1] <= 1024u);
}

// In a child process, refuses io_uring_setup with err (as a container's
// seccomp profile does) and constructs a context. Reports through the exit
// status: 0 if the context ran on epoll, said why, and echoed every byte of a
// TCP exchange (forced == false); or, with ZOKIO_BACKEND=io_uring
// (forced == true), if the constructor threw system_error with
// zokio::error::io_uring_unavailable and a message naming the refused call.
static int child_with_io_uring_refused(int err, bool forced)
{
  pid_t pid = ::fork();
  if (pid == 0)
  {
    if (forced)
      ::setenv("ZOKIO_BACKEND", "io_uring", 1);
    else
      ::unsetenv("ZOKIO_BACKEND");
    if (!zokio_test::refuse_io_uring(err))
      ::_exit(10);
    // The parent chose io_uring already; this process must choose anew.
    zokio::detail::forget_backend_choice();
    try
    {
      zokio::io_context ctx;
      if (forced)
        ::_exit(1); // should have thrown
      if (ctx.backend() != zokio::backend::epoll
          || ctx.statistics().backend != zokio::backend::epoll)
        ::_exit(4);
      const std::string why = zokio::current_backend().reason;
      if (why.find("io_uring refused") == std::string::npos
          || why.find(std::strerror(err)) == std::string::npos)
        ::_exit(5);
      // Every byte of 1 MiB through a loopback connection.
      auto [a, b] = zokio_test::connected_pair(ctx);
      std::string out(1 << 20, '\0'), in(out.size(), '\0');
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
      error_code write_ec, read_ec;
      asio::async_write(a, asio::buffer(out), [&](error_code ec, std::size_t) { write_ec = ec; });
      asio::async_read(b, asio::buffer(in), [&](error_code ec, std::size_t) { read_ec = ec; });
      zokio_test::run_bounded(ctx);
      ::_exit(!write_ec && !read_ec && in == out ? 0 : 6);
    }
    catch (const boost::system::system_error& e)
    {
      bool named = std::strstr(e.what(), "io_uring_queue_init_params") != nullptr
          && std::strstr(e.what(), "ZOKIO_BACKEND=io_uring") != nullptr;
      ::_exit(forced && e.code() == zokio::error::io_uring_unavailable && named ? 0 : 2);
    }
    catch (...)
    {
      ::_exit(3);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

BOOST_AUTO_TEST_CASE(io_uring_refused_falls_back_to_epoll)
{
  // EPERM: kernel.io_uring_disabled, Docker's and containerd's seccomp
  // profiles; ENOSYS: no io_uring, gVisor; ENOMEM: RLIMIT_MEMLOCK too low.
  for (int err : {EPERM, ENOSYS, ENOMEM, EINVAL})
    BOOST_TEST(child_with_io_uring_refused(err, false) == 0, "errno " << err);
}

BOOST_AUTO_TEST_CASE(io_uring_forced_but_refused_gives_a_clear_exception)
{
  for (int err : {EPERM, ENOSYS, ENOMEM})
    BOOST_TEST(child_with_io_uring_refused(err, true) == 0, "errno " << err);
}
