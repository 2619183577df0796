// libs/detail/process/child.cpp: see zokio/detail/process/child.hpp.
#include <zokio/detail/process/child.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include <boost/asio/error.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace zokio {
namespace detail {
namespace {

boost::system::error_code errno_code(int e) noexcept
{
  return boost::system::error_code(e, boost::asio::error::get_system_category());
}

// A pidfd for pid (linux 5.3), or -1 where the kernel has none (ENOSYS) or
// ZOKIO_PROCESS_NO_PIDFD=1 asks for the SIGCHLD path (tests).
int open_pidfd(pid_t pid) noexcept
{
#if defined(SYS_pidfd_open)
  static const bool disabled = [] {
    const char* v = std::getenv("ZOKIO_PROCESS_NO_PIDFD");
    return v && std::strcmp(v, "1") == 0;
  }();
  if (disabled)
    return -1;
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0)
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // pidfds are close-on-exec already; kept explicit
  return fd;
#else
  (void)pid;
  return -1;
#endif
}

// Closes what the parent opened for the child's side of its pipes.
struct child_ends
{
  int fds[3] = {-1, -1, -1};
  ~child_ends()
  {
    for (int fd : fds)
      if (fd >= 0)
        ::close(fd);
  }
};

} // namespace

bool child_state::reap_now(bool block) noexcept
{
  std::lock_guard<std::mutex> lock(mutex);
  if (reaped)
    return true;
  int st = 0;
  for (;;)
  {
    pid_t r = ::waitpid(pid, &st, block ? 0 : WNOHANG);
    if (r == pid)
    {
      reaped = true;
      status = st;
      return true;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == ECHILD)
    {
      // Reaped by someone else (SIGCHLD set to SIG_IGN, a waitpid(-1) of
      // the program's): gone, status unknown.
      reaped = true;
      status = 0;
      return true;
    }
    return false;  // still running (WNOHANG)
  }
}

void child_state::send(int sig, boost::system::error_code& ec) noexcept
{
  std::lock_guard<std::mutex> lock(mutex);
  if (reaped)
  {
    ec = errno_code(ESRCH);
    return;
  }
  int r;
#if defined(SYS_pidfd_send_signal)
  if (pidfd >= 0)
    r = static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
  else
#endif
    r = ::kill(pid, sig);  // not reaped: the pid is still this child's
  ec = r == 0 ? boost::system::error_code() : errno_code(errno);
}

void child_state::record_waitid() noexcept
{
  std::lock_guard<std::mutex> lock(mutex);
  if (reaped)
    return;
  reaped = true;
  const ::siginfo_t& i = waitid_info;
  switch (i.si_code)
  {
  case CLD_EXITED:
    status = (i.si_status & 0xff) << 8;  // as WIFEXITED / WEXITSTATUS read it
    break;
  case CLD_DUMPED:
    status = (i.si_status & 0x7f) | 0x80;
    break;
  default:  // CLD_KILLED
    status = i.si_status & 0x7f;
    break;
  }
}

bool waits_with_waitid(zokio::backend b) noexcept
{
  return b == zokio::backend::io_uring && uring::features().waitid;
}

int exit_code_of(int status) noexcept
{
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return status;
}

process_service::process_service(boost::asio::execution_context& ctx)
  : boost::asio::detail::execution_context_service_base<process_service>(ctx),
    // Created first, so shut down after this service (see child.hpp).
    sockets_(boost::asio::use_service<socket_service>(ctx))
{
}

process_service::~process_service() = default;

void process_service::shutdown()
{
  std::lock_guard<std::mutex> lock(mutex_);
  while (child_state* c = children_)
  {
    children_ = c->next;
    c->prev = c->next = nullptr;
    boost::system::error_code ignored;
    if (!c->reap_now(false))
    {
      c->send(SIGKILL, ignored);
      c->reap_now(true);
    }
    if (c->watch)
      sockets_.close(c->watch, ignored);
    std::lock_guard<std::mutex> l(c->mutex);
    c->orphaned = true;
  }
}

std::shared_ptr<child_state> process_service::spawn(spawn_request& r,
    boost::system::error_code& ec)
{
  // argv and envp as the C interface wants them (pointers into r).
  std::vector<char*> argv;
  argv.reserve(r.arguments.size() + 2);
  argv.push_back(const_cast<char*>(r.executable.c_str()));
  for (std::string& a : r.arguments)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (r.environment)
  {
    envp.reserve(r.environment->size() + 1);
    for (const std::string& e : *r.environment)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  // Pipes first: the parent's ends are handed to the pipe objects only
  // once the child exists.
  child_ends child_side;
  int parent_side[3] = {-1, -1, -1};
  auto close_parent_side = [&] {
    for (int& fd : parent_side)
      if (fd >= 0)
        ::close(std::exchange(fd, -1));
  };
  for (int i = 0; i < 3; ++i)
  {
    const stdio_spec& s = r.stdio[i];
    if (s.kind != stdio_spec::pipe_to_parent && s.kind != stdio_spec::pipe_from_parent)
      continue;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
    {
      ec = errno_code(errno);
      close_parent_side();
      return nullptr;
    }
    // pipe_to_parent: the child writes (its 1 or 2), the parent reads.
    const bool child_writes = s.kind == stdio_spec::pipe_to_parent;
    child_side.fds[i] = child_writes ? fds[1] : fds[0];
    parent_side[i] = child_writes ? fds[0] : fds[1];
  }

  auto c = std::make_shared<child_state>();

  ::posix_spawn_file_actions_t fa;
  ::posix_spawnattr_t attr;
  if (int e = ::posix_spawn_file_actions_init(&fa))
  {
    ec = errno_code(e);
    close_parent_side();
    return nullptr;
  }
  if (int e = ::posix_spawnattr_init(&attr))
  {
    ::posix_spawn_file_actions_destroy(&fa);
    ec = errno_code(e);
    close_parent_side();
    return nullptr;
  }
  int err = 0;
  for (int i = 0; i < 3 && err == 0; ++i)
  {
    const stdio_spec& s = r.stdio[i];
    switch (s.kind)
    {
    case stdio_spec::inherit:
      break;
    case stdio_spec::null_device:
      err = ::posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
      break;
    case stdio_spec::native:
      err = ::posix_spawn_file_actions_adddup2(&fa, s.fd, i);
      break;
    default:
      err = ::posix_spawn_file_actions_adddup2(&fa, child_side.fds[i], i);
      break;
    }
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
  if (err == 0 && !r.working_directory.empty())
    err = ::posix_spawn_file_actions_addchdir_np(&fa, r.working_directory.c_str());
#else
  if (err == 0 && !r.working_directory.empty())
    err = ENOSYS;
#endif
  // The child starts with every signal at its default action and none
  // blocked, whatever this thread's mask and this process's handlers (a
  // zokio signal_set, a blocked SIGPIPE) are.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  if (err == 0)
    err = ::posix_spawnattr_setsigdefault(&attr, &all);
  if (err == 0)
    err = ::posix_spawnattr_setsigmask(&attr, &none);
  if (err == 0)
    err = ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  if (err == 0)
  {
    char** env = r.environment ? envp.data() : environ;
    if (r.executable.find('/') != std::string::npos)
      err = ::posix_spawn(&pid, r.executable.c_str(), &fa, &attr, argv.data(), env);
    else
      err = ::posix_spawnp(&pid, r.executable.c_str(), &fa, &attr, argv.data(), env);
  }
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (err != 0)
  {
    ec = errno_code(err);
    close_parent_side();
    return nullptr;
  }
  c->pid = pid;

  // The parent's pipe ends go to their objects (after the spawn, so a
  // failed spawn leaves the objects closed).
  for (int i = 0; i < 3; ++i)
  {
    if (parent_side[i] < 0)
      continue;
    boost::system::error_code aec;
    r.stdio[i].assign(r.stdio[i].pipe, parent_side[i], aec);
    if (aec)
      ::close(parent_side[i]);
    parent_side[i] = -1;
  }

  c->pidfd = open_pidfd(pid);
  if (c->pidfd >= 0)
  {
    boost::system::error_code aec;
    c->watch = sockets_.assign(c->pidfd, false, aec);
    if (c->watch == nullptr)
    {
      ::close(c->pidfd);
      c->pidfd = -1;
    }
  }

  std::lock_guard<std::mutex> lock(mutex_);
  c->next = children_;
  if (children_)
    children_->prev = c.get();
  children_ = c.get();
  ec = boost::system::error_code();
  return c;
}

void process_service::release(child_state& c) noexcept
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (c.prev)
      c.prev->next = c.next;
    else if (children_ == &c)
      children_ = c.next;
    if (c.next)
      c.next->prev = c.prev;
    c.prev = c.next = nullptr;
  }
  boost::system::error_code ignored;
  if (!c.reap_now(false))
  {
    c.send(SIGKILL, ignored);
    c.reap_now(true);
  }
  if (c.watch)
    sockets_.close(c.watch, ignored);
}

} // namespace detail
} // namespace zokio
