// libs/detail/sigpipe.cpp: see sigpipe.hpp.
#include "detail/sigpipe.hpp"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <pthread.h>

namespace zokio {
namespace detail {
namespace sigpipe {
namespace {

// Whether block() changed this thread's mask (and restore() must undo it),
// and whether it looked at all since the last restore() (a thread whose
// mask already blocked SIGPIPE is not asked again at every write).
thread_local bool blocked_by_us = false;
thread_local bool looked = false;

sigset_t only_sigpipe() noexcept
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

// Blocks SIGPIPE; true if it was not blocked before.
bool block_now() noexcept
{
  sigset_t set = only_sigpipe();
  sigset_t old;
  if (::pthread_sigmask(SIG_BLOCK, &set, &old) != 0)
    return false;
  return !sigismember(&old, SIGPIPE);
}

void unblock_now() noexcept
{
  sigset_t set = only_sigpipe();
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

} // namespace

void block() noexcept
{
  if (!looked)
  {
    blocked_by_us = block_now();
    looked = true;
  }
}

void consume() noexcept
{
  sigset_t set = only_sigpipe();
  sigset_t pending;
  if (::sigpending(&pending) != 0 || !sigismember(&pending, SIGPIPE))
    return;
#if defined(__APPLE__)
  // No sigtimedwait: sigwait returns at once, since it is pending.
  int sig;
  ::sigwait(&set, &sig);
#else
  const timespec zero{0, 0};
  while (::sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR)
  {
  }
#endif
}

void restore() noexcept
{
  looked = false;
  if (blocked_by_us)
  {
    // A write whose EPIPE has not been reaped yet (still in the ring when
    // the thread leaves its run) raised a SIGPIPE that nobody took: it
    // must not be delivered on unblocking.
    consume();
    blocked_by_us = false;
    unblock_now();
  }
}

scope::scope() noexcept : blocked_here_(!blocked_by_us && block_now()) {}

scope::~scope()
{
  if (blocked_here_)
  {
    consume();
    unblock_now();
  }
}

} // namespace sigpipe
} // namespace detail
} // namespace zokio
