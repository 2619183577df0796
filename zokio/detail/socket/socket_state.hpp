// zokio/detail/socket/socket_state.hpp: the shared state of one open socket
// (or descriptor, pipe or file: every descriptor object of zokio has one).
//
// A socket object (basic_socket and friends) points to a socket_state; so
// does every operation in flight on it. The state outlives the socket object
// when operations are still in flight when it is closed or destroyed: the
// descriptor is closed only once the last of them has completed, so the
// kernel can never act on a descriptor number that has been reused by
// another open() in the meantime.
//
// States come from a pool in the socket_service and are never returned to
// the heap before the service is destroyed, so a cancellation handler left in
// a user's cancellation slot can always lock the state it names (as Asio's
// reactor keeps its descriptor states).
#ifndef ZOKIO_DETAIL_SOCKET_SOCKET_STATE_HPP
#define ZOKIO_DETAIL_SOCKET_SOCKET_STATE_HPP

#include <zokio/detail/config.hpp>

#include <boost/asio/detail/socket_ops.hpp>

#include <atomic>
#include <cstdint>
#include <thread>

namespace zokio {
namespace detail {

class accept_engine;
class receive_loop_base;
class socket_op;
class socket_service;

// A test-and-test-and-set lock for critical sections of a few instructions
// (linking an operation, marking it for cancellation). Uncontended it costs
// one atomic exchange.
class spin_lock
{
public:
  void lock() noexcept
  {
    for (unsigned spins = 0;; ++spins)
    {
      if (!locked_.exchange(true, std::memory_order_acquire))
        return;
      while (locked_.load(std::memory_order_relaxed))
      {
        if (++spins > 64)
          std::this_thread::yield();
        else
          detail::cpu_relax();
      }
    }
  }

  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
  std::atomic<bool> locked_{false};
};

class socket_state
{
public:
  // Layout: the one-byte fields first (16 bytes with the descriptor and its
  // generation), then the pointers: 48 bytes in all. Each field says why it
  // stays and who may touch it.

  // The descriptor. Fixed while the state is in use: set before the first
  // operation, closed only after the last one has completed.
  int fd_ = -1;

  // Bumped each time the state takes a descriptor (socket_service::assign),
  // never 0: the readiness drivers key their registrations by descriptor
  // and generation, so that a number closed and reused is registered anew
  // (io_request::generation).
  std::uint32_t generation_ = 0;

  // Asio's socket state bits (user_set_non_blocking, stream_oriented, ...),
  // for the synchronous calls of socket_ops. Touched by the socket's owner.
  boost::asio::detail::socket_ops::state_type flags_ = 0;

  // io_request hints every read and write on the descriptor carries (set
  // when it is assigned): stream | poll_then_retry | no_sigpipe for pipes,
  // terminals and other pollable descriptors, blocking for regular files, 0
  // for sockets. Fixed while the state is in use.
  std::uint8_t io_hints_ = 0;

  // Under lock_: whether a socket object still holds the state, and whether
  // the descriptor is closed once the operations drain (not after release()).
  spin_lock lock_;
  bool open_ = false;
  bool close_on_drain_ = true;

  // Receive hint: the last receive left the socket empty, so the next one
  // may wait for data before trying (io_request::poll_first). Any thread;
  // only a hint.
  std::atomic<bool> recv_drained_{false};

  // Regular files: a read is first tried at once from the page cache
  // (socket_service::try_cached_read); set when that cannot work for this
  // file (O_DIRECT, or a file system that refuses RWF_NOWAIT), so it is not
  // tried again. Any thread; only a hint.
  std::atomic<bool> no_cached_reads_{false};

  // Under the service's pool mutex: the state is handed out (not on the
  // free list). The walks over every state (for_each_receive_loop...) skip
  // the others.
  bool in_use_ = false;

  // Under lock_: the operations linked to the socket (in flight or about to
  // be).
  socket_op* ops_ = nullptr;

  // Under lock_: the multishot accept engine of an acceptor (null until its
  // first accept that uses it; accept_engine.hpp). Freed by reclaim.
  accept_engine* accept_ = nullptr;

  union
  {
    // In use, under lock_: the receive loop running on the socket
    // (async_receive_each; receive_loop.hpp), or null. close() and cancel()
    // mark it to stop. A loop, or a cancellation handler, that names a
    // state freed meanwhile only compares this with its own address (which
    // the free-list link below can never equal) and leaves it alone.
    receive_loop_base* recv_loop_ = nullptr;
    // Free, under the service's pool mutex: the pool's link.
    socket_state* next_free_;
  };

  // The owner of the pool (fixed): reached by a state's operations and by
  // cancellation handlers that outlive their socket object.
  socket_service* service_ = nullptr;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_SOCKET_STATE_HPP
