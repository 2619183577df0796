// Tests of the backend choice (zokio/backend.hpp): what ZOKIO_BACKEND
// forces, what a process reports, and the errors of a backend that cannot
// work. Each case that changes the choice runs in a child process, which
// forgets its parent's choice first.
#include <zokio/backend.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE backend
#include <boost/test/unit_test.hpp>

#include <detail/backend_select.hpp>

#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;

namespace {

// Runs body in a child process with ZOKIO_BACKEND set to forced (unset if
// null) and the parent's choice forgotten; returns its exit status (body's
// return value), or 100 + signal if it crashed.
template <typename Body>
int in_child(const char* forced, Body body)
{
  pid_t pid = ::fork();
  if (pid == 0)
  {
    if (forced)
      ::setenv("ZOKIO_BACKEND", forced, 1);
    else
      ::unsetenv("ZOKIO_BACKEND");
    zokio::detail::forget_backend_choice();
    int code = 99;
    try
    {
      code = body();
    }
    catch (...)
    {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// 0 if constructing a context throws system_error with code e and a message
// containing what.
int throws(boost::system::error_code e, const char* what)
{
  try
  {
    zokio::io_context ctx;
    return 1;
  }
  catch (const boost::system::system_error& x)
  {
    if (x.code() != e)
      return 2;
    return std::strstr(x.what(), what) ? 0 : 3;
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(every_context_reports_the_process_backend)
{
  zokio::io_context ctx;
  zokio::thread_pool pool(1);
  const zokio::backend_choice& c = zokio::current_backend();
  BOOST_TEST((ctx.backend() == c.backend));
  BOOST_TEST((pool.backend() == c.backend));
  BOOST_TEST((ctx.statistics().backend == c.backend));
  BOOST_TEST(!c.reason.empty());
  BOOST_TEST_MESSAGE("backend " << zokio::to_string(c.backend) << ": " << c.reason);
  const char* forced = std::getenv("ZOKIO_BACKEND");
  if (forced && *forced)
  {
    BOOST_TEST(std::string(zokio::to_string(c.backend)) == forced);
    BOOST_TEST(c.reason == std::string("ZOKIO_BACKEND=") + forced);
  }
  pool.join();
}

BOOST_AUTO_TEST_CASE(names)
{
  BOOST_TEST(std::string(zokio::to_string(zokio::backend::io_uring)) == "io_uring");
  BOOST_TEST(std::string(zokio::to_string(zokio::backend::epoll)) == "epoll");
  BOOST_TEST(std::string(zokio::to_string(zokio::backend::kqueue)) == "kqueue");
}

BOOST_AUTO_TEST_CASE(forcing_epoll_runs_on_epoll)
{
  int r = in_child("epoll", [] {
    zokio::io_context ctx;
    int ran = 0;
    asio::post(ctx, [&] { ++ran; });
    ctx.run();
    if (ctx.backend() != zokio::backend::epoll || ran != 1)
      return 1;
    return zokio::current_backend().reason == "ZOKIO_BACKEND=epoll" ? 0 : 2;
  });
  BOOST_TEST(r == 0);
}

BOOST_AUTO_TEST_CASE(an_unknown_backend_is_refused_with_a_clear_error)
{
  int r = in_child("select", [] {
    int a = throws(zokio::error::backend_unavailable, "ZOKIO_BACKEND=select: unknown backend");
    if (a != 0)
      return a;
    // current_backend() throws the same, every time: nothing is remembered.
    try
    {
      zokio::current_backend();
      return 4;
    }
    catch (const boost::system::system_error& x)
    {
      return x.code() == zokio::error::backend_unavailable ? 0 : 5;
    }
  });
  BOOST_TEST(r == 0);
}

BOOST_AUTO_TEST_CASE(kqueue_forced_where_the_build_lacks_it)
{
  // In a libkqueue build (the kqueue suites) kqueue works: nothing to refuse.
  int r = in_child("kqueue", [] {
    try
    {
      zokio::io_context ctx;
      return ctx.backend() == zokio::backend::kqueue ? 10 : 1;
    }
    catch (const boost::system::system_error& x)
    {
      return x.code() == zokio::error::backend_unavailable
          && std::strstr(x.what(), "no kqueue backend") ? 0 : 2;
    }
  });
  if (r == 10)
    BOOST_TEST_MESSAGE("this build has the kqueue backend (libkqueue): it ran, nothing refused");
  else
    BOOST_TEST(r == 0);
}

BOOST_AUTO_TEST_CASE(a_driver_that_cannot_be_created_gives_a_system_error)
{
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' runtime needs descriptors of its own when a child has
  // none left, and reports through them: the case runs in plain builds.
  BOOST_TEST_MESSAGE("skipped under AddressSanitizer/UBSan: it takes every descriptor of the process");
  return;
#endif
  // No descriptor left for the epoll instance (or the wake-up eventfd): the
  // constructor throws, naming the call, instead of crashing or hanging.
  for (const char* b : {"epoll", "io_uring"})
  {
    int r = in_child(b, [b] {
      // Every descriptor the limit allows is taken (whatever the process
      // had open, a sanitizer's included).
      rlimit lim{64, 64};
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
        return 20;
      while (::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0)
      {
      }
      if (errno != EMFILE)
        return 21;
      try
      {
        zokio::io_context ctx;
        return 1;
      }
      catch (const boost::system::system_error& x)
      {
        // io_uring: the probe that chooses the backend is refused EMFILE,
        // which is not a reason to change backends.
        const bool named = std::strcmp(b, "epoll") == 0
            ? std::strstr(x.what(), "epoll_create1") != nullptr
            : std::strstr(x.what(), "io_uring") != nullptr;
        return x.code().value() == EMFILE && named ? 0 : 2;
      }
    });
    BOOST_TEST(r == 0, b << ": " << r);
  }
}
