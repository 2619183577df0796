// zokio/detail/signal/signal_service.hpp: the implementation behind
// zokio::basic_signal_set, one service per context.
//
// Delivery (process-wide, libs/detail/signal/signal_service.cpp):
//   1. The first registration of a signal number in the process installs
//      zokio's handler with sigaction (SA_SIGINFO | SA_RESTART, every signal
//      blocked while it runs), keeping the action that was there; the last
//      removal puts that action back. The handler is async-signal-safe: it
//      writes the number as one byte to a process-wide self-pipe (each
//      signal counted, as Asio counts them; when the pipe is full, a
//      lock-free per-number flag keeps it instead, which the reader of the
//      bytes already waiting looks at), and then calls the previous handler
//      if it was a function, so another library's handler keeps working.
//   2. Each service that has had a registration keeps a read of the pipe's
//      read end in flight on its context (an internal step of the thread
//      that armed it: io_uring READ, or a readiness wait on epoll and
//      kqueue; no thread of its own, no reactor of Asio's). It is neither
//      work nor a handler: run() returns when no wait is pending.
//   3. Whichever service reads bytes (and takes the raised flags), under
//      the registry's mutex, delivers each signal to every registration of
//      it in every service of the process, as Asio does: a set with waits
//      pending completes all of them (posted to its own context, from any
//      thread); a set without one counts the signal, and its next
//      async_wait completes at once with it.
//
// Ownership: a set's state (set_state) belongs to its signal_set object
// and lives until it is destroyed; registrations belong to their set and
// are linked into the service's table; waiting operations belong to their
// set's queue until they are posted or destroyed. All of it is touched only
// under the registry's mutex (one per process, as in Asio: signal
// operations are rare).
#ifndef ZOKIO_DETAIL_SIGNAL_SIGNAL_SERVICE_HPP
#define ZOKIO_DETAIL_SIGNAL_SIGNAL_SERVICE_HPP

#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/bound_handler.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <csignal>
#include <thread>

namespace zokio {
namespace detail {

class signal_service;

// Signal numbers are below this (NSIG, or 128 where it is not defined).
#if defined(NSIG) && NSIG > 0
constexpr int max_signal_number = NSIG;
#else
constexpr int max_signal_number = 128;
#endif

// An async_wait: posted with the signal number, or with operation_aborted.
class signal_op : public operation
{
public:
  int signal_number_ = 0;
  boost::system::error_code ec_;
  void* key_ = nullptr;             // per-operation cancellation key, or null
  signal_op* next_wait_ = nullptr;  // the set's queue (registry mutex)

protected:
  explicit signal_op(func_type f) noexcept : operation(f) {}
};

class signal_service
  : public boost::asio::detail::execution_context_service_base<signal_service>,
    public scheduler::idle_hook
{
public:
  struct registration;

  // One signal_set object.
  struct set_state
  {
    registration* regs_ = nullptr;        // one per signal number added
    signal_op* head_ = nullptr;           // waiting operations, in order
    signal_op* tail_ = nullptr;
    set_state* prev_set_ = nullptr;       // the service's sets_
    set_state* next_set_ = nullptr;
    bool orphaned_ = false;               // the service has shut down (the context is going)
  };

  explicit signal_service(boost::asio::execution_context& ctx);
  ~signal_service();

  // Removes every registration of the service and destroys the waiting
  // operations (their handlers are not invoked, as at Asio's shutdown).
  void shutdown() override;

  // fork_child: the pipe read moves to the child's own pipe.
  void notify_fork(boost::asio::execution_context::fork_event event) override;

  // scheduler::idle_hook: the pipe read, for a child after fork.
  io_operation* internal_step() noexcept override
  {
    return read_started_.load(std::memory_order_acquire) ? &read_ : nullptr;
  }

  scheduler& owner() noexcept { return scheduler_; }

  set_state* create();
  // Removes the set's registrations; waiting operations complete with
  // operation_aborted; frees s. Static: a set may outlive its context (the
  // service's shutdown orphans its sets, and then only s is touched).
  static void destroy(signal_service* service, set_state* s) noexcept;

  void add(set_state* s, int signal_number, boost::system::error_code& ec);
  void remove(set_state* s, int signal_number, boost::system::error_code& ec);
  void clear(set_state* s, boost::system::error_code& ec);
  // Waiting operations complete with operation_aborted.
  void cancel(set_state* s, boost::system::error_code& ec);

  template <typename Handler, typename IoExecutor>
  void async_wait(set_state* s, Handler& handler, const IoExecutor& io_ex);

  // scheduler::idle_hook.
  bool before_sleep(runner&) override { return false; }
  void retire_this_thread() noexcept override;

  // Cancels the waiting operation whose key is key (per-operation cancellation).
  void cancel_by_key(set_state* s, void* key) noexcept;

private:
  friend struct signal_delivery;

  // Queues op on s, or posts it at once with a counted signal; op counts
  // as work from here on. Arms the pipe read if it is not.
  void start_wait(set_state* s, signal_op* op);

  // The read of the self-pipe (an internal step; see the top of the file).
  class pipe_read final : public io_operation
  {
  public:
    explicit pipe_read(signal_service* service) noexcept;
    void set_start() noexcept { set_func(&do_start); }
    void set_armed() noexcept { set_func(&do_complete); }

  private:
    static void do_start(scheduler* owner, operation* base);
    static void do_complete(scheduler* owner, operation* base);

    signal_service* service_;
    unsigned char buffer_[64];
  };

  // Arms the read on the calling thread's runner, or hands it to the next
  // thread that runs the context. Once per service.
  void arm_read();

  scheduler& scheduler_;
  pipe_read read_;
  std::atomic<bool> read_started_{false};
  std::atomic<std::thread::id> armed_by_{};
  std::atomic<bool> shut_down_{false};

  // Registry (under its mutex): this service's registrations by signal
  // number, and its place in the process's list of services.
  registration* table_[max_signal_number] = {};
  set_state* sets_ = nullptr;
  signal_service* prev_service_ = nullptr;
  signal_service* next_service_ = nullptr;
};

// Installed in a handler's cancellation slot: any cancellation type aborts
// the wait (a wait that has not completed has consumed nothing).
class signal_op_cancellation
{
public:
  signal_op_cancellation(signal_service* service, signal_service::set_state* set) noexcept
    : service_(service), set_(set)
  {
  }

  void operator()(boost::asio::cancellation_type_t type)
  {
    if (type != boost::asio::cancellation_type::none)
      service_->cancel_by_key(set_, this);
  }

private:
  signal_service* service_;
  signal_service::set_state* set_;
};

template <typename Handler, typename IoExecutor>
class signal_wait_op final : public signal_op
{
public:
  signal_wait_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner)
    : signal_op(&do_complete), handler_(std::move(handler), io_ex, owner)
  {
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<signal_wait_op*>(base);
    if (owner == nullptr)
      return bound_handler<Handler, IoExecutor>::discard(o);
    boost::system::error_code ec = o->ec_;
    int n = o->signal_number_;
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

template <typename Handler, typename IoExecutor>
void signal_service::async_wait(set_state* s, Handler& handler, const IoExecutor& io_ex)
{
  using op = signal_wait_op<Handler, IoExecutor>;
  auto slot = boost::asio::get_associated_cancellation_slot(handler);
  op* o = bound_handler<Handler, IoExecutor>::template create<op>(handler, io_ex, scheduler_);
  if (slot.is_connected())
    o->key_ = &slot.template emplace<signal_op_cancellation>(this, s);
  start_wait(s, o);
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SIGNAL_SIGNAL_SERVICE_HPP
