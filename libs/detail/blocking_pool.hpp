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
// thread busy with a call (not one that is only handing a call back), and
// living until the process exits. They block every signal, so a signal
// meant for the program is never delivered to them.
//
// Ownership: an operation queued here belongs to the pool until done is
// called for it (or try_cancel takes it back); the pool never frees one.
#ifndef ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP
#define ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP

#include <zokio/detail/io_operation.hpp>

#include <condition_variable>
#include <cstddef>
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

  // FIFO of queued calls: a ring over a vector that only grows (doubling),
  // so a steady stream of calls allocates nothing once warm (a deque frees
  // and allocates a chunk every few hundred). Under mutex_.
  class job_fifo
  {
  public:
    bool empty() const noexcept { return count_ == 0; }
    void push(const job& j)  // strong guarantee: on bad_alloc nothing changed
    {
      if (count_ == ring_.size())
      {
        std::vector<job> bigger(ring_.empty() ? 16 : ring_.size() * 2);
        for (std::size_t i = 0; i < count_; ++i)
          bigger[i] = ring_[(head_ + i) % ring_.size()];
        ring_.swap(bigger);
        head_ = 0;
      }
      ring_[(head_ + count_) % ring_.size()] = j;
      ++count_;
    }
    job pop() noexcept
    {
      job j = ring_[head_];
      head_ = (head_ + 1) % ring_.size();
      --count_;
      return j;
    }
    void drop_last() noexcept { --count_; }
    // Takes out the job of op, keeping the others' order; false if absent.
    bool erase(io_operation* op) noexcept
    {
      for (std::size_t i = 0; i < count_; ++i)
      {
        if (ring_[(head_ + i) % ring_.size()].op != op)
          continue;
        for (std::size_t k = i; k + 1 < count_; ++k)
          ring_[(head_ + k) % ring_.size()] = ring_[(head_ + k + 1) % ring_.size()];
        --count_;
        return true;
      }
      return false;
    }

  private:
    std::vector<job> ring_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
  };

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  job_fifo jobs_;                 // queued calls
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;          // threads waiting for a job
  std::size_t finishing_ = 0;     // threads handing a finished call back (in done)
  std::size_t max_threads_;
  bool stopping_ = false;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_BLOCKING_POOL_HPP
