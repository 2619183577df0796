// libs/detail/blocking_pool.hpp: a small process-wide pool of threads that
// make the system calls of regular files for the readiness backends.
//
// epoll refuses regular files and kqueue calls them always ready: a read
// from a slow disk made on the event loop's thread would stall every other
// operation of that thread. So, as Tokio's tokio::fs does, a readiness
// driver hands a request marked io_request::blocking to this pool, whose
// threads make the call (they may block) and hand the operation back to the
// driver that owns it (through done, on the pool thread). io_uring needs
// none of this: the kernel makes those calls in its own workers.
//
// Bounded: at most max_threads() threads (ZOKIO_BLOCKING_THREADS, default 8;
// requests beyond wait in a FIFO), started when a request finds every
// thread busy and living until the process exits. They block every signal,
// so a signal meant for the program is never delivered to them.
//
// Ownership: an operation queued here belongs to the pool until done is
// called for it (or try_cancel takes it back); the pool never frees one.
#ifndef ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP
#define ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP

#include <zokio/detail/io_operation.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace zokio {
namespace detail {

class blocking_pool
{
public:
  // Called on a pool thread once op's call is made (op->result_ set).
  using done_func = void (*)(void* owner, io_operation* op) noexcept;

  static blocking_pool& instance();

  // Queues op (its request is made with transfer()). Throws std::bad_alloc
  // or std::system_error (no thread could be started and none runs).
  void submit(io_operation* op, done_func done, void* owner);

  // Takes op back if no thread has started its call yet: true, and done is
  // never called for it. Any thread.
  bool try_cancel(io_operation* op) noexcept;

  // Threads started so far (statistics).
  std::size_t threads() const noexcept;

  std::size_t max_threads() const noexcept { return max_threads_; }

  ~blocking_pool();

private:
  blocking_pool();

  struct job
  {
    io_operation* op;
    done_func done;
    void* owner;
  };

  void work() noexcept;

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<job> jobs_;          // FIFO of queued calls
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;          // threads waiting for a job
  std::size_t max_threads_;
  bool stopping_ = false;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP
