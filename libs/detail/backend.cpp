// libs/detail/backend.cpp: choosing the process's backend (zokio/backend.hpp).
#include <zokio/backend.hpp>
#include <zokio/error.hpp>

#include "detail/backend_select.hpp"
#if defined(ZOKIO_HAS_IO_URING)
#include "detail/uring/ring.hpp"
#endif

#include <boost/system/system_error.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

namespace zokio {
namespace detail {

std::atomic<int> chosen_backend{-1};

namespace {

std::mutex choice_mutex;
std::optional<backend_choice> choice;  // under choice_mutex until published

[[noreturn]] void refuse(error::zokio_errors e, const std::string& what)
{
  throw boost::system::system_error(make_error_code(e), what);
}

#if defined(ZOKIO_HAS_IO_URING)
// Tries to set up a ring of the default size, as the first context would
// (so a locked-memory limit too low for it is found here). Returns the
// refusal's system_error if the kernel refused io_uring in one of the ways
// that mean "use another backend", nothing if io_uring works; rethrows any
// other failure (EMFILE: the context could not start on any backend).
std::optional<boost::system::system_error> probe_io_uring()
{
  try
  {
    uring::ring probe{driver_sizes{}};
    return std::nullopt;
  }
  catch (const boost::system::system_error& e)
  {
    switch (e.code().value())
    {
    case ENOSYS:  // no io_uring (also gVisor)
    case EPERM:   // kernel.io_uring_disabled, seccomp (Docker 25+, containerd 2)
    case EACCES:
    case EINVAL:  // not even the plain setup (gVisor answers EINVAL to flags)
    case ENOMEM:  // RLIMIT_MEMLOCK too low for the rings (before 5.12)
      return e;
    default:
      throw;
    }
  }
}
#endif

backend_choice choose()
{
  const char* forced = std::getenv("ZOKIO_BACKEND");
  if (forced && *forced)
  {
    std::string name = forced;
    std::string why = "ZOKIO_BACKEND=" + name;
    if (name == "io_uring")
    {
#if defined(ZOKIO_HAS_IO_URING)
      if (auto refusal = probe_io_uring())
        refuse(error::io_uring_unavailable, why + ": " + refusal->what());
      return {backend::io_uring, why};
#else
      refuse(error::io_uring_unavailable, why + ": this system has no io_uring");
#endif
    }
    if (name == "epoll")
    {
#if defined(ZOKIO_HAS_EPOLL)
      return {backend::epoll, why};
#else
      refuse(error::backend_unavailable, why + ": this system has no epoll");
#endif
    }
    if (name == "kqueue")
    {
#if defined(ZOKIO_HAS_KQUEUE)
      return {backend::kqueue, why};
#else
      refuse(error::backend_unavailable,
          why + ": this build has no kqueue backend (on Linux, configure with -DZOKIO_LIBKQUEUE=...)");
#endif
    }
    refuse(error::backend_unavailable, why + ": unknown backend (io_uring, epoll or kqueue)");
  }

#if defined(ZOKIO_HAS_IO_URING)
  if (auto refusal = probe_io_uring())
  {
# if defined(ZOKIO_HAS_EPOLL)
    return {backend::epoll, std::string("io_uring refused, epoll used instead: ") + refusal->what()};
# else
    throw *refusal;
# endif
  }
  return {backend::io_uring, "io_uring is available"};
#elif defined(ZOKIO_HAS_KQUEUE)
  return {backend::kqueue, "kqueue is this system's interface"};
#else
  return {backend::epoll, "epoll is this system's interface"};
#endif
}

} // namespace

void forget_backend_choice() noexcept
{
  std::lock_guard<std::mutex> lock(choice_mutex);
  choice.reset();
  chosen_backend.store(-1, std::memory_order_relaxed);
}

} // namespace detail

const char* to_string(backend b) noexcept
{
  switch (b)
  {
  case backend::io_uring:
    return "io_uring";
  case backend::epoll:
    return "epoll";
  case backend::kqueue:
    return "kqueue";
  }
  return "unknown";
}

const backend_choice& current_backend()
{
  using namespace detail;
  std::lock_guard<std::mutex> lock(choice_mutex);
  if (!choice)
  {
    // A failure is not remembered: every context constructor throws it anew
    // (and a fault that goes away, EMFILE, lets a later one succeed).
    choice = choose();
    chosen_backend.store(static_cast<int>(choice->backend), std::memory_order_relaxed);
  }
  return *choice;
}

} // namespace zokio
