// zokio/detail/process/child.hpp: spawning a child process and the state a
// zokio::basic_process shares with its waits and with its context.
//
// Ownership: a child_state is shared (std::shared_ptr) by the process
// object and its pending waits, and listed (raw pointer, under the
// service's mutex) by the context's process_service while the object
// lives. The child is reaped exactly once, by whoever first sees it exit
// (reap_now), under the state's mutex; its pid is never signalled after
// that (it may belong to another process by then).
//
// Context destroyed first: the service's shutdown (which runs before the
// socket service's, having been created after it) kills and reaps every
// child still listed, closes their pidfd watches and marks them orphaned;
// the process object then touches only its child_state.
#ifndef ZOKIO_DETAIL_PROCESS_CHILD_HPP
#define ZOKIO_DETAIL_PROCESS_CHILD_HPP

#include <zokio/backend.hpp>
#include <zokio/detail/socket/socket_service.hpp>

#include <boost/asio/execution_context.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/types.h>

namespace zokio {
namespace detail {

// What a child's descriptor 0, 1 or 2 becomes.
struct stdio_spec
{
  enum kind_type { inherit, null_device, native, pipe_to_parent, pipe_from_parent };
  kind_type kind = inherit;
  int fd = -1;  // native: the descriptor the child gets (the parent keeps it)
  // pipe_*: the parent's pipe object, given the parent's end of a new pipe.
  void* pipe = nullptr;
  void (*assign)(void* pipe, int fd, boost::system::error_code& ec) = nullptr;
};

struct spawn_request
{
  std::string executable;                       // a path, or a name looked up in PATH
  std::vector<std::string> arguments;           // after argv[0]
  const std::vector<std::string>* environment;  // "NAME=value" each; null: the parent's
  std::string working_directory;                // empty: the parent's
  stdio_spec stdio[3];
};

struct child_state
{
  pid_t pid = -1;
  int pidfd = -1;                 // owned by watch (closed with it); -1 without pidfd
  socket_state* watch = nullptr;  // the pidfd in the socket service; null if none or orphaned

  std::mutex mutex;               // reaped, status, orphaned
  bool reaped = false;
  int status = 0;                 // waitpid's status once reaped
  bool orphaned = false;

  child_state* prev = nullptr;    // process_service's list (its mutex)
  child_state* next = nullptr;

  // Reaps the child if it has exited (block: waits until it has). True
  // once reaped (now or before).
  bool reap_now(bool block) noexcept;

  // Sends sig unless the child has been reaped (then ESRCH: it is gone).
  void send(int sig, boost::system::error_code& ec) noexcept;

  // IORING_OP_WAITID reaped the child and wrote this (the wait's target,
  // written by the kernel while the request is in flight).
  ::siginfo_t waitid_info{};

  // Records the exit that waitid_info describes, unless the child was
  // reaped otherwise meanwhile (status kept in waitpid's encoding).
  void record_waitid() noexcept;
};

// Whether the context of backend b waits for children with IORING_OP_WAITID
// (io_uring and a kernel that has it; not with ZOKIO_NET_FEATURES=none).
bool waits_with_waitid(zokio::backend b) noexcept;

// The exit code as shells report it: the status passed to exit, or 128 +
// the number of the signal that ended the child.
int exit_code_of(int status) noexcept;

class process_service
  : public boost::asio::detail::execution_context_service_base<process_service>
{
public:
  explicit process_service(boost::asio::execution_context& ctx);
  ~process_service();

  // Kills and reaps every child still listed; their objects become orphans.
  void shutdown() override;

  socket_service& sockets() noexcept { return sockets_; }

  // Starts the child described by r and lists its state; null with ec set
  // on failure (no child, no descriptor left open, the pipes untouched).
  std::shared_ptr<child_state> spawn(spawn_request& r, boost::system::error_code& ec);

  // The process object is going away: takes c off the list. Unless the
  // child was reaped, it is killed and reaped first (no zombie is left).
  void release(child_state& c) noexcept;

private:
  socket_service& sockets_;
  std::mutex mutex_;
  child_state* children_ = nullptr;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_PROCESS_CHILD_HPP
