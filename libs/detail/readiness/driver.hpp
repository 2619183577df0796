// libs/detail/readiness/driver.hpp: the readiness drivers (epoll, kqueue):
// one poller instance per thread that runs a context, which makes each
// operation's system call itself and waits for readiness when it would
// block.
//
// An operation's life here:
//   1. start() queues it in pending_ (no system call inside the handler that
//      started it; the pass submits, as io_uring's does).
//   2. submit() makes its system call (perform): done, it goes to done_;
//      would block (EAGAIN, a connect in progress), it waits in the queue of
//      its descriptor's slot for its direction (read, write, except). An
//      operation behind another in the same queue waits without trying, so
//      operations on one descriptor and direction complete in order.
//   3. When the poller reports the descriptor ready, the queue's operations
//      are performed again in order, until one would block.
//   4. reap() hands done_ to the scheduler (internal steps to the runner's
//      internal_ready_).
// A cancel request (io_request::cancel) takes its target out of its wait
// queue and completes it with -ECANCELED; if the target is not waiting (done
// already) the cancel completes with -ENOENT, as io_uring's does.
//
// Registrations: a descriptor is registered once, edge-triggered, for every
// direction (epoll: EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET;
// kqueue: EVFILT_READ and EVFILT_WRITE with EV_CLEAR), tagged with the
// descriptor and its generation (io_request::generation). Edge-triggered is
// correct because an operation always tries before it waits: readiness that
// arrived while nothing waited is found by the attempt, and readiness that
// arrives after the attempt is an edge. A closed descriptor leaves the kernel's
// set by itself; its number, reused, comes with a new generation, so the
// slot registers it again and events of the old registration (a descriptor
// kept open elsewhere) are recognised by their generation and ignored.
//
// Threads: everything belongs to the owner thread but wake() (any thread),
// and the shutdown (no thread runs the context then). Nothing here is
// touched by the kernel, so destroying operations never waits for it.
//
// Allocation: slots_ starts with 1024 entries and doubles when a higher
// descriptor first waits; events_ is fixed. No allocation per operation.
#ifndef ZOKIO_LIBS_DETAIL_READINESS_DRIVER_HPP
#define ZOKIO_LIBS_DETAIL_READINESS_DRIVER_HPP

#include <zokio/detail/driver_sizes.hpp>
#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/op_queue.hpp>
#include <zokio/detail/sched/runner.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace zokio {
namespace detail {
namespace readiness {

enum direction : unsigned char { dir_read = 0, dir_write = 1, dir_except = 2 };

// Readiness of one descriptor, as a poller reports it.
struct event
{
  std::uint64_t tag;  // (generation << 32) | fd, or one of the poller's own tags
  bool readable;      // also end of stream, hang-up and errors
  bool writable;      // also hang-up and errors
  bool priority;      // out-of-band data, hang-up and errors
  bool hangup;        // the peer closed (its FIN: EPOLLRDHUP, EV_EOF), a hang-up or an error
  unsigned revents;   // POLLIN / POLLOUT / POLLPRI / POLLERR / POLLHUP bits
  int error;          // a socket error the poller took with the event (kqueue's
                      // EV_EOF fflags: libkqueue reads SO_ERROR to fill it, which
                      // clears it), else 0
};

// The per-descriptor state of one driver.
struct fd_slot
{
  op_queue ops[3];                // waiting operations, by direction, oldest first
  std::uint32_t generation = 0;   // of the registration in the poller
  bool registered = false;
  bool hung_up = false;           // a hang-up was reported: reads see the end of
                                  // the stream (or an error) from now on, so
                                  // readable stays true
  bool readable = true;           // false: the last read-direction attempt found
                                  // nothing and no readable event came since, so
                                  // the next one waits without trying (saves the
                                  // system call that would fail, as io_uring's
                                  // POLL_FIRST does); true when unknown
  int error = 0;                  // a socket error an event took out of the
                                  // socket (event::error), for the next
                                  // transfer that would report it
};

} // namespace readiness
} // namespace detail
} // namespace zokio

#include "detail/readiness/epoll_poller.hpp"
#include "detail/readiness/kqueue_poller.hpp"

namespace zokio {
namespace detail {
namespace readiness {

// The part common to epoll and kqueue. Poller provides:
//   Poller(driver_sizes)           creates the instance and its wake-up
//                                  (throws system_error)
//   int add(int fd, uint64_t tag)  registers fd (0 or an errno)
//   int wait(event* out, int max, int64_t timeout_ns, uint64_t& syscalls)
//                                  waits (timeout 0: polls; no_deadline:
//                                  for ever); returns the events (its own
//                                  wake-up and timer events left out; a
//                                  wake-up sets woke()) or -errno
//   take_woke(), last_was_full()   (wait_outcome.hpp) a wake-up ended the
//                                  waits; the last wait filled the list
//   void wake()                    any thread
//   drops_when_full                events that did not fit in a full list
//                                  are lost (libkqueue)
//   short_read_means_empty         a short stream receive, no hang-up
//                                  reported, leaves nothing to read
template <typename Poller>
class driver
{
public:
  driver(runner& r, const driver_sizes& sizes);
  ~driver();

  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  void start(io_operation* op) noexcept
  {
    op->runner_ = &runner_;
    pending_.push(op);
    ++pending_count_;
  }

  void start_internal(io_operation* op) noexcept
  {
    op->internal_ = true;
    start(op);
  }

  void cancel_internal(io_operation* op) noexcept;

  unsigned pending() const noexcept { return static_cast<unsigned>(pending_count_); }
  void flush() noexcept {}
  bool submit();
  bool completions_ready() const noexcept
  {
    return !done_.empty() || returned_flag_.load(std::memory_order_relaxed);
  }

  // Operations wait for readiness and the caller will not sleep right away
  // (which would collect the events): a poll of the kernel is worth it.
  bool wants_events(bool idle) const noexcept { return waiting_ != 0 && !idle; }
  void get_events() { wait_and_dispatch(0); }

  std::size_t reap(op_queue& out) noexcept;
  bool prepare_sleep() noexcept { return true; }
  void sleep(std::int64_t timeout_ns);
  void wake() noexcept { poller_.wake(); }

  std::size_t in_flight() const noexcept
  {
    return pending_count_ + waiting_ + done_count_ + offloaded_;
  }

  // Nothing lasts here beyond its operation: nothing to end.
  bool retire(op_queue&) noexcept { return true; }

  // The owner thread leaves for good (drv::evacuate, after retire). Nothing
  // here is in a kernel's hands, but nobody would poll this instance again
  // until a thread without a runner of its own took the runner over, which
  // may never come. So what was started is performed, and every operation
  // still waiting leaves to out with -ECANCELED, as io_uring's cancelled
  // requests do: a socket operation nobody cancelled is made again by the
  // next thread that runs the context (socket_op::migrate), the others
  // complete as cancelled; completed ones go too. Internal steps (none
  // after the idle hooks' retire_this_thread) and calls on the blocking
  // pool (they come back here) stay: returns their count.
  std::size_t evacuate(op_queue& out) noexcept;

  // Destroys every operation the driver holds (shutdown; any thread, none
  // running the context).
  void destroy_all() noexcept;

  // A child after fork() (drv::forked): the poller instance, its wake-up
  // and its timer were the parent's (an epoll set is shared across fork; a
  // kqueue is not inherited at all). A new instance replaces them; each
  // descriptor with operations waiting is registered in it again and its
  // operations try once more (a readiness edge may have gone to the
  // parent's set); the internal steps of steps that wait here complete
  // with -ECANCELED (they waited on the parent's objects). Calls the
  // blocking pool was making are the parent's threads': lost to the child.
  void forked(io_operation* const* steps, std::size_t n, op_queue& out);

  // Another thread takes the driver over (its owner exited): the instance
  // serves any thread, so only completions move.
  void take_completed(op_queue& out) noexcept { reap(out); }

  Poller& poller() noexcept { return poller_; }

private:
  static direction direction_of(const io_request& q) noexcept;

  // Makes op's system call. True if op is done (result_ set). slot: op's
  // descriptor's, if it has one yet.
  bool perform(io_operation* op, const event* ev, fd_slot* slot) noexcept;

  // Gives op a slot queue to wait in (registering its descriptor), or
  // completes it with the registration's error.
  void wait_or_fail(io_operation* op, direction d);

  void issue(io_operation* op);
  void cancel(io_operation* op) noexcept;

  // io_request::blocking: hands op to the blocking pool, which calls
  // blocking_done on its thread when the call is made.
  void offload(io_operation* op) noexcept;
  static void blocking_done(void* self, io_operation* op) noexcept;

  // Owner thread: moves the operations the pool handed back to done_.
  void collect_returned() noexcept;

  // Takes op out of its descriptor's wait queue; false if it was not there
  // (done already, or never waited).
  bool unlink_waiting(io_operation* op) noexcept;
  void complete(io_operation* op) noexcept
  {
    done_.push(op);
    ++done_count_;
  }
  fd_slot* slot_for(int fd);
  void run_queue(fd_slot& s, direction d, const event& ev) noexcept;
  void retry_all_waiting() noexcept;
  void wait_and_dispatch(std::int64_t timeout_ns);

  static constexpr std::size_t initial_slots = 1024;

  runner& runner_;
  Poller poller_;
  op_queue pending_;                // started, not yet performed
  op_queue done_;                   // completed, not yet reaped
  std::size_t pending_count_ = 0;
  std::size_t waiting_ = 0;         // in slot queues
  std::size_t done_count_ = 0;
  std::vector<fd_slot> slots_;      // by descriptor number
  std::unique_ptr<event[]> events_; // one wait's events
  int max_events_;

  // Operations on the blocking pool (owner thread), and those it handed
  // back: returned_ under returned_mutex_ (pool threads push, the owner
  // takes); returned_flag_ says it is not empty, so the owner looks without
  // the lock (release by the pool thread after the push, under the lock;
  // the owner's relaxed look is only a hint, the take is under the lock).
  std::size_t offloaded_ = 0;
  std::mutex returned_mutex_;
  op_queue returned_;
  std::atomic<bool> returned_flag_{false};
};

#if defined(ZOKIO_HAS_EPOLL)
class epoll_driver : public driver<epoll_poller>
{
public:
  using driver<epoll_poller>::driver;
};
#endif

#if defined(ZOKIO_HAS_KQUEUE)
class kqueue_driver : public driver<kqueue_poller>
{
public:
  using driver<kqueue_poller>::driver;
};
#endif

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_READINESS_DRIVER_HPP
