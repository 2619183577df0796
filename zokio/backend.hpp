// zokio/backend.hpp: the kernel interface zokio runs on, chosen once per
// process.
#ifndef ZOKIO_BACKEND_HPP
#define ZOKIO_BACKEND_HPP

#include <zokio/detail/config.hpp>

#include <string>

namespace zokio {

/// The kernel interfaces a zokio context can run on.
/**
 * One is chosen for the whole process when the first context is created:
 * the ZOKIO_BACKEND environment variable (io_uring, epoll or kqueue) if it is
 * set; otherwise io_uring on Linux, or epoll where the kernel refuses
 * io_uring (ENOSYS: no io_uring, or gVisor; EPERM: the
 * kernel.io_uring_disabled sysctl or a seccomp profile, as in Docker's and
 * containerd's defaults; EINVAL: no setup flag accepted; ENOMEM: the locked
 * memory limit), and kqueue on the BSDs and macOS. Forcing a backend that
 * cannot work makes the context's constructor throw
 * boost::system::system_error naming the reason (for io_uring,
 * zokio::error::io_uring_unavailable).
 */
enum class backend
{
  /// Completion-based: one io_uring per thread that runs a context.
  io_uring,

  /// Readiness-based: one epoll instance per thread (Linux).
  epoll,

  /// Readiness-based: one kqueue per thread (BSD, macOS; Linux with libkqueue).
  kqueue,
};

/// The backend's name as ZOKIO_BACKEND spells it.
const char* to_string(backend b) noexcept;

/// The backend of this process, and why it was chosen.
struct backend_choice
{
  /// The backend every context of the process runs on.
  zokio::backend backend;

  /// How it was chosen, in words: "ZOKIO_BACKEND=epoll", "io_uring is
  /// available", or, where io_uring was refused, the refusal
  /// ("io_uring_queue_init_params: Operation not permitted (io_uring is
  /// disabled by the kernel.io_uring_disabled sysctl or refused by a seccomp
  /// profile)").
  std::string reason;
};

/// Chooses the backend if no context has yet, and returns the choice.
/**
 * @throws boost::system::system_error if ZOKIO_BACKEND names a backend that
 * this build lacks or that cannot work here (the same exception every later
 * call and every context constructor then throws).
 */
const backend_choice& current_backend();

} // namespace zokio

#endif // ZOKIO_BACKEND_HPP
