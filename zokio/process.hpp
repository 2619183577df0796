// zokio/process.hpp: child processes on a zokio context: spawn, pipes to
// their standard streams, and an asynchronous wait for their exit.
#ifndef ZOKIO_PROCESS_HPP
#define ZOKIO_PROCESS_HPP

#include <zokio/basic_readable_pipe.hpp>
#include <zokio/basic_signal_set.hpp>
#include <zokio/basic_writable_pipe.hpp>
#include <zokio/detail/io_scheduler.hpp>
#include <zokio/detail/process/child.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>

#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace zokio {

/// What one of a child's standard streams is connected to.
class process_stdio_target
{
public:
  /// The parent's own stream (the default).
  process_stdio_target() noexcept = default;

  /// /dev/null.
  static process_stdio_target null() noexcept
  {
    process_stdio_target t;
    t.spec_.kind = detail::stdio_spec::null_device;
    return t;
  }

  /// A descriptor of the parent's (duplicated into the child; the parent keeps it).
  static process_stdio_target native(int fd) noexcept
  {
    process_stdio_target t;
    t.spec_.kind = detail::stdio_spec::native;
    t.spec_.fd = fd;
    return t;
  }

  /// A new pipe whose read end p receives: the child writes to it (stdout,
  /// stderr). p must be closed; it is opened when the child is spawned.
  template <typename Executor>
  process_stdio_target(basic_readable_pipe<Executor>& p) noexcept  // NOLINT: implicit, as Boost.Process
  {
    spec_.kind = detail::stdio_spec::pipe_to_parent;
    spec_.pipe = &p;
    spec_.assign = [](void* pipe, int fd, boost::system::error_code& ec) {
      static_cast<basic_readable_pipe<Executor>*>(pipe)->assign(fd, ec);
    };
  }

  /// A new pipe whose write end p receives: the child reads from it (stdin).
  template <typename Executor>
  process_stdio_target(basic_writable_pipe<Executor>& p) noexcept  // NOLINT: implicit
  {
    spec_.kind = detail::stdio_spec::pipe_from_parent;
    spec_.pipe = &p;
    spec_.assign = [](void* pipe, int fd, boost::system::error_code& ec) {
      static_cast<basic_writable_pipe<Executor>*>(pipe)->assign(fd, ec);
    };
  }

  const detail::stdio_spec& spec() const noexcept { return spec_; }

private:
  detail::stdio_spec spec_;
};

/// A child's standard input, output and error.
struct process_stdio
{
  process_stdio_target in = {};
  process_stdio_target out = {};
  process_stdio_target err = {};
};

/// How a child starts, besides its program and arguments.
struct process_options
{
  /// "NAME=value" strings; unset: the parent's environment.
  std::optional<std::vector<std::string>> environment = {};
  /// Empty: the parent's working directory.
  std::string working_directory = {};
  process_stdio stdio = {};
};

/// A child process.
/**
 * Spawned at construction with posix_spawn (every signal at its default
 * action and none blocked in the child; zokio's own descriptors are
 * close-on-exec and never reach it). The program is a path, or a name
 * looked up in PATH. A failed spawn (no such program, not executable, a
 * bad working directory) throws boost::system::system_error with the
 * system's error; no child and no descriptor is left behind.
 *
 * async_wait() completes once the child has exited and been reaped, with
 * its exit code: the status it passed to exit, or 128 + the number of the
 * signal that ended it (native_exit_code() gives waitpid's status). On
 * io_uring with Linux 6.7 or later the wait is one IORING_OP_WAITID request,
 * which also reaps the child; otherwise, on Linux 5.3 and later, a
 * readiness wait on the child's pidfd through the context's driver
 * (IORING_OP_POLL_ADD on io_uring, epoll or kqueue), then waitpid; without
 * pidfds it waits for SIGCHLD through a zokio::signal_set.
 *
 * Destroying the object while the child runs kills it (SIGKILL) and reaps
 * it, as Boost.Process v2 does; so does destroying the context first. No
 * zombie is left either way.
 *
 * @par Per-Operation Cancellation
 * async_wait supports terminal, partial and total cancellation (the child
 * keeps running).
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe, except that the signal-sending members may
 * be called from any thread.
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_process
{
public:
  using executor_type = Executor;
  using pid_type = ::pid_t;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_process<Executor1>;
  };

  /// Spawns executable with arguments (argv[1]...).
  basic_process(const executor_type& ex, std::string executable,
      std::vector<std::string> arguments = {}, process_options options = {})
    : service_(&service_for(ex)), executor_(ex)
  {
    detail::spawn_request r;
    r.executable = std::move(executable);
    r.arguments = std::move(arguments);
    r.environment = options.environment ? &*options.environment : nullptr;
    r.working_directory = std::move(options.working_directory);
    r.stdio[0] = options.stdio.in.spec();
    r.stdio[1] = options.stdio.out.spec();
    r.stdio[2] = options.stdio.err.spec();
    boost::system::error_code ec;
    child_ = service_->spawn(r, ec);
    boost::asio::detail::throw_error(ec, "spawn");
    if (child_->watch == nullptr)
    {
      // No pidfd: SIGCHLD tells when to look (added now, so an exit before
      // the first wait is kept by the set).
      sigchld_ = std::make_unique<basic_signal_set<Executor>>(ex, SIGCHLD);
    }
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_process(ExecutionContext& context, std::string executable,
      std::vector<std::string> arguments = {}, process_options options = {})
    : basic_process(executor_type(context.get_executor()), std::move(executable),
          std::move(arguments), std::move(options))
  {
  }

  basic_process(basic_process&& other) noexcept = default;
  basic_process& operator=(basic_process&& other) noexcept
  {
    if (this != &other)
    {
      release();
      service_ = other.service_;
      executor_ = std::move(other.executor_);
      child_ = std::move(other.child_);
      sigchld_ = std::move(other.sigchld_);
    }
    return *this;
  }

  basic_process(const basic_process&) = delete;
  basic_process& operator=(const basic_process&) = delete;

  /// Kills the child if it still runs, and reaps it.
  ~basic_process() { release(); }

  const executor_type& get_executor() noexcept { return executor_; }

  /// The child's process id (-1 for a moved-from object).
  pid_type id() const noexcept { return child_ ? child_->pid : -1; }

  /// Whether the child still runs (reaps it if it has exited).
  bool running()
  {
    return child_ && !child_->reap_now(false);
  }

  /// The exit code once the child has been reaped (-1 before).
  int exit_code() const
  {
    if (!child_)
      return -1;
    std::lock_guard<std::mutex> lock(child_->mutex);
    return child_->reaped ? detail::exit_code_of(child_->status) : -1;
  }

  /// waitpid's status once reaped (0 before).
  int native_exit_code() const
  {
    if (!child_)
      return 0;
    std::lock_guard<std::mutex> lock(child_->mutex);
    return child_->status;
  }

  /// Blocks until the child exits; returns its exit code.
  int wait()
  {
    boost::system::error_code ec;
    int code = wait(ec);
    boost::asio::detail::throw_error(ec, "wait");
    return code;
  }

  int wait(boost::system::error_code& ec)
  {
    if (!child_)
    {
      ec = boost::asio::error::bad_descriptor;
      return -1;
    }
    child_->reap_now(true);
    ec = boost::system::error_code();
    return exit_code();
  }

  /// SIGKILL.
  void terminate() { send(SIGKILL, "terminate"); }
  void terminate(boost::system::error_code& ec) { send(SIGKILL, ec); }
  /// SIGINT.
  void interrupt() { send(SIGINT, "interrupt"); }
  void interrupt(boost::system::error_code& ec) { send(SIGINT, ec); }
  /// SIGTERM.
  void request_exit() { send(SIGTERM, "request_exit"); }
  void request_exit(boost::system::error_code& ec) { send(SIGTERM, ec); }

  /// Waits for the child to exit.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, int exit_code) @endcode
   */
  template <typename WaitToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(WaitToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_compose<WaitToken, void(boost::system::error_code, int)>(
        wait_op{child_, service_, sigchld_.get(), executor_}, token, executor_);
  }

private:
  struct wait_op
  {
    std::shared_ptr<detail::child_state> child;
    detail::process_service* service;
    basic_signal_set<Executor>* sigchld;
    Executor executor;
    enum { start, look, waited_ring } phase = start;

    template <typename Self>
    void operator()(Self& self, boost::system::error_code ec = {}, int = 0)
    {
      if (phase == start)
      {
        // Never inside the initiating function (a child that has exited
        // already would complete there): the first look is posted.
        phase = look;
        Executor ex = executor;
        return boost::asio::post(ex, std::move(self));
      }
      if (!child)
        return self.complete(boost::asio::error::bad_descriptor, -1);
      if (phase == waited_ring)
      {
        // IORING_OP_WAITID reaped it (or, with ECHILD, another waitpid of
        // this object's did first: the state has the status then).
        if (!ec)
          child->record_waitid();
        else if (ec.value() != ECHILD)
          return self.complete(ec, -1);  // cancelled, or the object went away
        phase = look;
      }
      else if (ec)
      {
        return self.complete(ec, -1);  // cancelled, or the object went away
      }
      if (child->reap_now(false))
        return self.complete(boost::system::error_code(), exit_code_now());
      {
        std::lock_guard<std::mutex> lock(child->mutex);
        if (child->orphaned)
          return self.complete(boost::asio::error::operation_aborted, -1);
      }
      // SIGCHLD: any child's; look again after each.
      if (sigchld)
        return sigchld->async_wait(std::move(self));
      // This object moves into the wait with self: take what it needs first.
      detail::child_state& c = *child;
      detail::socket_service& sockets = service->sockets();
      Executor ex = executor;
      if (detail::waits_with_waitid(sockets.owner().backend()))
      {
        // The ring waits and reaps (linux 6.7): one request, no poll and
        // no waitpid afterwards.
        phase = waited_ring;
        auto h = std::move(self);
        return sockets.async_waitid(c.watch, c.pid, &c.waitid_info, h, ex);
      }
      auto h = std::move(self);
      sockets.async_wait(c.watch, boost::asio::socket_base::wait_read, h, ex);
    }

    int exit_code_now() const
    {
      std::lock_guard<std::mutex> lock(child->mutex);
      return detail::exit_code_of(child->status);
    }
  };

  void send(int sig, const char* what)
  {
    boost::system::error_code ec;
    send(sig, ec);
    boost::asio::detail::throw_error(ec, what);
  }

  void send(int sig, boost::system::error_code& ec)
  {
    if (!child_)
    {
      ec = boost::asio::error::bad_descriptor;
      return;
    }
    child_->send(sig, ec);
  }

  // Kills and reaps a running child. After the context's shutdown (which
  // did that and orphaned the child's state) only the state is touched.
  void release() noexcept
  {
    sigchld_.reset();
    if (child_)
    {
      bool orphaned;
      {
        std::lock_guard<std::mutex> lock(child_->mutex);
        orphaned = child_->orphaned;
      }
      if (!orphaned)
        service_->release(*child_);
    }
    child_.reset();
  }

  static detail::process_service& service_for(const executor_type& ex)
  {
    detail::scheduler& s = detail::io_scheduler_or_throw(ex, "zokio::basic_process");
    return boost::asio::use_service<detail::process_service>(s.context());
  }

  detail::process_service* service_;
  Executor executor_;
  std::shared_ptr<detail::child_state> child_;
  std::unique_ptr<basic_signal_set<Executor>> sigchld_;
};

/// A child process on any executor of a zokio context.
using process = basic_process<>;

} // namespace zokio

#endif // ZOKIO_PROCESS_HPP
