// Tests of the ring core: setup with fallback, a full submission queue, an
// overflowing completion queue, and io_uring refused by the kernel.
#include <detail/uring/driver.hpp>

#define BOOST_TEST_MODULE detail_uring_ring
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <zokio/detail/nop_op.hpp>
#include <zokio/io_context.hpp>

#include <boost/asio/post.hpp>

#include <cstdlib>
#include <cstring>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

// In a child process, makes io_uring_setup fail with err (as a container's
// seccomp profile does), constructs a context, and reports through the exit
// status: 0 if it threw system_error with err and a message naming the call.
static int child_with_io_uring_refused(int err)
{
  pid_t pid = ::fork();
  if (pid == 0)
  {
    struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      ::_exit(10);
    try
    {
      zokio::io_context ctx;
      ::_exit(1); // should have thrown
    }
    catch (const boost::system::system_error& e)
    {
      bool named = std::strstr(e.what(), "io_uring_queue_init_params") != nullptr;
      ::_exit(e.code().value() == err && named ? 0 : 2);
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

BOOST_AUTO_TEST_CASE(io_uring_refused_gives_a_clear_exception)
{
  BOOST_TEST(child_with_io_uring_refused(EPERM) == 0);
  BOOST_TEST(child_with_io_uring_refused(ENOSYS) == 0);
  BOOST_TEST(child_with_io_uring_refused(ENOMEM) == 0);
}
