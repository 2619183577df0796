// zokio/provided_buffer_pool.hpp: receive buffers chosen by the kernel when
// data arrives (io_uring provided buffer rings), and the view a receive
// hands to its handler.
#ifndef ZOKIO_PROVIDED_BUFFER_POOL_HPP
#define ZOKIO_PROVIDED_BUFFER_POOL_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/io_scheduler.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/execution_context.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <utility>

struct io_uring_buf_ring;

namespace zokio {
namespace detail {
class scheduler;
class runner;
class receive_loop_base;
} // namespace detail

class provided_buffer_pool;

/// A buffer of a provided_buffer_pool holding received data; move-only.
/**
 * Given to the handler of basic_stream_socket::async_receive_provided. The
 * buffer goes back to its pool (and from there to the kernel) when the object
 * is destroyed or release() is called; until then the data stays valid. An
 * empty object (default-constructed, moved-from, released, or handed to a
 * handler with an error) has size() 0.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe (a buffer may be released on any thread).@n
 * @e Shared @e objects: Unsafe.
 */
class provided_buffer
{
public:
  /// An empty buffer.
  provided_buffer() noexcept = default;

  provided_buffer(provided_buffer&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), data_(other.data_), size_(other.size_),
      id_(other.id_)
  {
  }

  provided_buffer& operator=(provided_buffer&& other) noexcept
  {
    if (this != &other)
    {
      release();
      pool_ = std::exchange(other.pool_, nullptr);
      data_ = other.data_;
      size_ = other.size_;
      id_ = other.id_;
    }
    return *this;
  }

  provided_buffer(const provided_buffer&) = delete;
  provided_buffer& operator=(const provided_buffer&) = delete;

  ~provided_buffer() { release(); }

  /// The received bytes.
  const void* data() const noexcept { return pool_ ? data_ : nullptr; }
  void* data() noexcept { return pool_ ? data_ : nullptr; }

  /// The number of bytes received (0 when empty).
  std::size_t size() const noexcept { return pool_ ? size_ : 0; }

  /// True when the object holds no buffer.
  bool empty() const noexcept { return pool_ == nullptr; }

  /// The received bytes as a buffer (for async_write and friends).
  boost::asio::const_buffer buffer() const noexcept { return {data(), size()}; }
  operator boost::asio::const_buffer() const noexcept { return buffer(); }
  operator boost::asio::mutable_buffer() noexcept { return {data(), size()}; }

  /// Gives the buffer back to its pool now; the object becomes empty.
  inline void release() noexcept;

private:
  friend class provided_buffer_pool;

  provided_buffer(provided_buffer_pool* pool, char* data, std::size_t size,
      std::uint32_t id) noexcept
    : pool_(pool), data_(data), size_(size), id_(id)
  {
  }

  provided_buffer_pool* pool_ = nullptr;
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint32_t id_ = 0;
};

/// A fixed set of equal-sized receive buffers for
/// basic_stream_socket::async_receive_provided.
/**
 * Where the kernel has provided buffer rings (IORING_REGISTER_PBUF_RING,
 * linux 5.19) the buffers are registered with the ring of one thread of the
 * context, and a receive names the pool instead of a buffer: the kernel
 * picks a free buffer only when data arrives. A connection waiting for data
 * therefore holds no buffer, and memory is proportional to the data in
 * flight, not to the number of connections.
 *
 * Where it does not (older kernels, ZOKIO_NET_FEATURES=none, or a
 * registration the kernel refuses), the same API works: each receive takes
 * a free buffer of the pool when it is submitted and receives into it, so
 * then a waiting receive does hold a buffer.
 *
 * @par Threads
 * A buffer ring belongs to one io_uring, and zokio has one ring per thread
 * running the context. The pool therefore binds, on the first receive that
 * uses it, to the thread running the context that starts it (or, from
 * outside the context, to the thread that submits it); every later receive
 * on the pool is submitted on that thread's ring (handed over if started on
 * another thread of a thread_pool, and completed there; its handler may
 * still be run by any worker). On a thread_pool, use one pool per worker
 * (started from that worker) for receives to spread over the workers.
 *
 * @par Exhaustion
 * When every buffer is held (by handlers that have not released them, or by
 * data the kernel has placed and not yet reported), a receive completes with
 * boost::asio::error::no_buffer_space and the data stays in the socket:
 * release buffers and receive again. Size the pool for the data in flight.
 *
 * @par Lifetime
 * The pool must outlive every receive started on it and every
 * provided_buffer taken from it, and be destroyed before its context.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Safe for receives and buffer release; construction
 * and destruction are not.
 */
class provided_buffer_pool
{
public:
  /// Creates count buffers of buffer_size bytes for the context ctx.
  /**
   * @param buffer_size Bytes per buffer (1 to 2^31).
   * @param count Number of buffers (1 to 32768).
   * @throws boost::system::system_error (invalid_argument, no_memory).
   */
  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  provided_buffer_pool(ExecutionContext& ctx, std::size_t buffer_size, std::size_t count)
    : provided_buffer_pool(
          detail::io_scheduler_or_throw(ctx.get_executor(), "zokio::provided_buffer_pool"),
          buffer_size, count)
  {
  }

  /// Creates the pool for the context of a zokio executor.
  template <typename Executor>
    requires (!std::is_convertible_v<Executor&, boost::asio::execution_context&>)
  provided_buffer_pool(const Executor& ex, std::size_t buffer_size, std::size_t count)
    : provided_buffer_pool(detail::io_scheduler_or_throw(ex, "zokio::provided_buffer_pool"),
          buffer_size, count)
  {
  }

  provided_buffer_pool(detail::scheduler& s, std::size_t buffer_size, std::size_t count);
  ~provided_buffer_pool();

  provided_buffer_pool(const provided_buffer_pool&) = delete;
  provided_buffer_pool& operator=(const provided_buffer_pool&) = delete;

  /// Bytes per buffer.
  std::size_t buffer_size() const noexcept { return buffer_size_; }

  /// Number of buffers.
  std::size_t size() const noexcept { return count_; }

  /// True once the pool is bound to a thread's ring and the kernel picks the
  /// buffers (false before the first receive, and on the fallback).
  bool kernel_selected() const noexcept
  {
    return home_.load(std::memory_order_acquire) != nullptr && ring_mode_;
  }

  // Internal interface of the receive operation (zokio/detail/socket/ops/
  // recv_provided_op.hpp); not part of the API.

  // The runner whose ring holds this pool's receives. Binds the pool to here
  // (registering the buffer ring on its ring) if it is not bound yet; null
  // only when unbound and here is null.
  detail::runner* route(detail::runner* here) noexcept
  {
    detail::runner* home = home_.load(std::memory_order_acquire);
    if (home || here == nullptr)
      return home;
    return bind(here);
  }

  // Home runner's thread. Kernel mode: makes buffers released on other
  // threads available to the kernel again. Returns true in kernel mode.
  bool prepare_kernel_mode() noexcept
  {
    if (!ring_mode_)
      return false;
    if (returned_.load(std::memory_order_relaxed) != nil)
      drain_returned();
    return true;
  }

  std::uint16_t group() const noexcept { return group_; }

  // Home runner's thread, fallback mode: takes a free buffer, or returns
  // nil when none is free.
  std::uint32_t take() noexcept;

  char* data_of(std::uint32_t id) const noexcept { return data_ + std::size_t(id) * buffer_size_; }

  // A view of buffer id holding n received bytes.
  provided_buffer make_buffer(std::uint32_t id, std::size_t n) noexcept
  {
    return provided_buffer(this, data_of(id), n, id);
  }

  // Gives buffer id back. Any thread.
  void give_back(std::uint32_t id) noexcept;

  // Home runner's thread, kernel mode: puts the buffers released on other
  // threads back in the kernel's ring; true if there were any.
  bool refill() noexcept
  {
    if (!ring_mode_ || returned_.load(std::memory_order_relaxed) == nil)
      return false;
    drain_returned();
    return true;
  }

  // Receive loops (zokio/detail/socket/receive_loop.hpp): buffers the
  // kernel filled that no handler has seen yet wait in a list linked
  // through their records (next_, free while a buffer is held), with their
  // lengths. Under the loop's socket lock.
  void set_pending(std::uint32_t id, std::uint32_t length) noexcept
  {
    lengths_[id] = length;
    next_[id].store(nil, std::memory_order_relaxed);
  }
  void link_pending(std::uint32_t id, std::uint32_t next) noexcept
  {
    next_[id].store(next, std::memory_order_relaxed);
  }
  std::uint32_t pending_next(std::uint32_t id) const noexcept
  {
    return next_[id].load(std::memory_order_relaxed);
  }
  std::uint32_t pending_length(std::uint32_t id) const noexcept { return lengths_[id]; }

  // Receive loops waiting for a buffer (the pool was dry for them). Any
  // thread. returns() counts the buffers given back so far; park(l, epoch)
  // puts l on the waiting list unless a buffer has come back since epoch
  // (then false: l is not listed, try again). A listed loop is resumed
  // (receive_loop_base::resume, under the list's mutex) when a buffer comes
  // back, one loop per buffer. unpark takes l off the list if it is there;
  // after it, no resume touches l.
  std::uint32_t returns() const noexcept { return returns_.load(std::memory_order_seq_cst); }
  bool park(detail::receive_loop_base* l, std::uint32_t epoch) noexcept;
  bool unpark(detail::receive_loop_base* l) noexcept;

  static constexpr std::uint32_t nil = 0xffffffffu;

private:
  detail::runner* bind(detail::runner* here) noexcept;
  void drain_returned() noexcept;
  void push_returned(std::uint32_t id) noexcept;
  void add_to_ring(std::uint32_t id) noexcept;

  detail::scheduler& scheduler_;
  const std::size_t buffer_size_;
  const std::size_t count_;
  char* data_ = nullptr;              // count_ x buffer_size_, mmap'd (pages fault in on use)
  std::size_t data_bytes_ = 0;

  // Set once by bind() (under bind_mutex_), before home_ is published with
  // release; read after an acquire load of home_.
  std::mutex bind_mutex_;
  std::atomic<detail::runner*> home_{nullptr};
  bool ring_mode_ = false;            // the kernel picks buffers from ring_
  ::io_uring_buf_ring* ring_ = nullptr;
  std::size_t ring_bytes_ = 0;
  unsigned ring_entries_ = 0;         // power of two >= count_
  std::uint16_t group_ = 0;           // buffer group id on the home ring

  // Free buffers not in the kernel's ring: a stack of ids linked through
  // next_. Any thread pushes (CAS); only the home runner's thread pops or
  // takes the whole stack, so a popped id cannot come back between its load
  // and the CAS (no ABA). In kernel mode it holds the buffers released on
  // other threads until the home thread adds them to the ring; in fallback
  // mode it is the free list.
  std::atomic<std::uint32_t>* next_ = nullptr;
  std::atomic<std::uint32_t> returned_{nil};

  // Per buffer: the length of a pending chunk (see set_pending).
  std::uint32_t* lengths_ = nullptr;

  // Waiting receive loops (park), linked through their queue link
  // (receive_loop_base::wait_next), under
  // wait_mutex_. waiting_ says the list may be non-empty, so that give_back
  // looks at it only then; with returns_, a Dekker pair: a loop sets
  // waiting_ then reads returns_, give_back bumps returns_ then reads
  // waiting_ (all seq_cst), so a buffer given back while a loop parks is
  // seen by one of them.
  void wake_one() noexcept;
  std::mutex wait_mutex_;
  detail::receive_loop_base* waiters_ = nullptr;
  std::atomic<bool> waiting_{false};
  std::atomic<std::uint32_t> returns_{0};
};

inline void provided_buffer::release() noexcept
{
  if (provided_buffer_pool* p = std::exchange(pool_, nullptr))
    p->give_back(id_);
}

} // namespace zokio

#endif // ZOKIO_PROVIDED_BUFFER_POOL_HPP
