// libs/detail/sigpipe.hpp: writes to pipes that never raise SIGPIPE.
//
// A write to a pipe (or FIFO, or terminal) whose reader has gone fails with
// EPIPE and also raises SIGPIPE, whose default action ends the process.
// Sockets avoid it with MSG_NOSIGNAL; descriptors have no such flag. The
// signal is directed at the thread that made the write: the thread that
// made the system call on a readiness backend, and the thread that
// submitted the SQE on io_uring (the kernel attempts the write from that
// thread's io_uring_enter or task work). So the thread blocks SIGPIPE
// before its first such write (block()), and after a write that failed with
// EPIPE takes the pending signal out (consume()), so that nothing is
// delivered when the mask is restored. The mask is restored when the
// thread leaves the outermost run of a context (restore()): a child process
// forked from the thread afterwards inherits the mask it had before.
//
// Every function touches only the calling thread's state.
#ifndef ZOKIO_LIBS_DETAIL_SIGPIPE_HPP
#define ZOKIO_LIBS_DETAIL_SIGPIPE_HPP

namespace zokio {
namespace detail {
namespace sigpipe {

// Blocks SIGPIPE in the calling thread unless this module already did (one
// system call per thread and run, then a thread-local test).
void block() noexcept;

// Takes a pending SIGPIPE of the calling thread, if any (after EPIPE).
void consume() noexcept;

// Restores the mask block() changed, if it did, taking a SIGPIPE still
// pending first (one raised by a write whose completion is not reaped yet).
void restore() noexcept;

// Blocks for the lifetime of the object, for one synchronous write (takes
// a pending SIGPIPE and restores what it changed at the end).
class scope
{
public:
  scope() noexcept;
  ~scope();
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

private:
  bool blocked_here_;
};

} // namespace sigpipe
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_SIGPIPE_HPP
