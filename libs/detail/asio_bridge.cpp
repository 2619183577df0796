// libs/detail/asio_bridge.cpp: driving Asio's reactor from a zokio driver
// (the protocol is at the top of zokio/detail/asio_bridge.hpp).
#include <zokio/detail/asio_bridge.hpp>
#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/sched/scheduler.hpp>

#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/version.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>
#include <poll.h>

#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) || !defined(BOOST_ASIO_HAS_EPOLL)
#error "zokio's Asio bridge drives Asio's epoll reactor; this build selects another one"
#endif

namespace zokio {
namespace detail {
namespace {

namespace ad = boost::asio::detail;

// Access to a few private members of Asio's scheduler and reactor: an
// explicit instantiation may name private members, and the friend function
// it defines hands the member pointer out (its type deduced, since some of
// the members' types are private too).
template <typename Tag, auto Member>
struct private_member
{
  friend constexpr auto get(Tag) noexcept { return Member; }
};

#define ZOKIO_ASIO_PRIVATE(tag, member)                                                   \
  struct tag                                                                              \
  {                                                                                       \
    friend constexpr auto get(tag) noexcept;                                              \
  };                                                                                      \
  template struct private_member<tag, &member>

ZOKIO_ASIO_PRIVATE(asio_task_interrupted, ad::scheduler::task_interrupted_);
ZOKIO_ASIO_PRIVATE(asio_scheduler_mutex, ad::scheduler::mutex_);
ZOKIO_ASIO_PRIVATE(asio_outstanding_work, ad::scheduler::outstanding_work_);
ZOKIO_ASIO_PRIVATE(asio_op_queue, ad::scheduler::op_queue_);
ZOKIO_ASIO_PRIVATE(asio_task_operation, ad::scheduler::task_operation_);
ZOKIO_ASIO_PRIVATE(asio_epoll_fd, ad::epoll_reactor::epoll_fd_);

#undef ZOKIO_ASIO_PRIVATE

static_assert(BOOST_VERSION / 100 == 1081,
    "zokio's Asio bridge uses private members of Asio's scheduler and epoll_reactor "
    "(task_interrupted_, mutex_, outstanding_work_, op_queue_, task_operation_, "
    "epoll_fd_) and relies on when Asio calls init_task and on how its poll() "
    "leaves task_interrupted_; check them for this Boost version");

// One per zokio context (io_context or thread_pool). Registered after the
// zokio scheduler and Asio's scheduler, so shut down before both.
class asio_bridge
  : public ad::execution_context_service_base<asio_bridge>,
    public scheduler::idle_hook
{
public:
  // Both schedulers are registered by then (install_scheduler).
  explicit asio_bridge(boost::asio::execution_context& ctx)
    : ad::execution_context_service_base<asio_bridge>(ctx),
      zokio_(boost::asio::use_service<scheduler>(ctx)),
      asio_(boost::asio::use_service<ad::scheduler>(ctx)),
      op_(this)
  {
  }

  void shutdown() override { shut_down_.store(true, std::memory_order_relaxed); }

  // Asio's task hook, from Asio's init_task, with Asio's scheduler mutex
  // held, on whichever thread constructed the first reactor-using object (or
  // on a runner, from before_sleep): must not call back into Asio's
  // scheduler's locking members.
  void activate(ad::epoll_reactor& reactor)
  {
    reactor_ = &reactor;
    op_.watch(reactor.*get(asio_epoll_fd()));
    // Held for the life of the context (see the header: Work counting).
    // atomic_count: no lock needed.
    asio_.work_started();
    // init_task interrupts the task right after this hook returns, which
    // makes the poll fire once at once: any work Asio queued before
    // activation (a resolver completion) runs then.
    asio_.*get(asio_task_interrupted()) = false;
    active_.store(true, std::memory_order_release);
    if (runner* r = zokio_.this_thread_runner())
    {
      op_.set_armed();
      armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      r->start_internal(&op_);
    }
    else
    {
      op_.set_start();
      zokio_.post_internal(&op_);
    }
  }

  // scheduler::idle_hook: a runner is about to sleep. Asio's scheduler may
  // hold work (a resolve in progress) although nothing created the reactor:
  // then nothing would wake this context for its completion, so activate.
  bool before_sleep(runner&) override
  {
    if (active_.load(std::memory_order_relaxed))
      return false;
    if ((asio_.*get(asio_outstanding_work())) == 0)
      return false;
    asio_.init_task(); // calls bridged_task, hence activate(), on this runner
    return true;
  }

  // See asio_bridge.hpp ("leaves the context for good"). Only the thread that armed the
  // poll (armed_by_, written by that thread) touches that runner's ring.
  void retire_this_thread() noexcept override
  {
    if (!active_.load(std::memory_order_acquire)
        || armed_by_.load(std::memory_order_relaxed) != std::this_thread::get_id())
      return;
    runner* r = op_.runner_;
    if (r == nullptr)
      return;
    // Its completion is left for the runner's retirement to reap.
    r->cancel_internal(&op_);
  }

  // scheduler::idle_hook: the poll, once armed.
  io_operation* internal_step() noexcept override
  {
    return active_.load(std::memory_order_acquire) ? &op_ : nullptr;
  }

private:
  // The poll on the reactor's epoll descriptor (an io_request::poll: a
  // POLL_ADD on io_uring, a readiness wait in the zokio driver's own epoll
  // or kqueue set otherwise). Internal step: its completion is run by the
  // runner whose driver holds it (run_internal).
  class poll_op final : public io_operation
  {
  public:
    explicit poll_op(asio_bridge* bridge) noexcept
      : io_operation(&do_complete), bridge_(bridge)
    {
      req_.kind = io_request::poll;
      req_.flags = POLLIN;
    }

    // The descriptor watched; set once, before the poll is first armed.
    void watch(int fd) noexcept { req_.fd = fd; }

    void set_start() noexcept { set_func(&do_start); }
    void set_armed() noexcept { set_func(&do_complete); }

  private:

    // From post_internal: runs in housekeeping of some runner.
    static void do_start(scheduler* owner, operation* base)
    {
      auto* o = static_cast<poll_op*>(base);
      if (owner == nullptr)
        return; // shutting down; the op belongs to the bridge
      o->set_armed();
      o->bridge_->armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      owner->this_thread_runner()->start_internal(o);
    }

    static void do_complete(scheduler* owner, operation* base)
    {
      auto* o = static_cast<poll_op*>(base);
      if (owner == nullptr)
        return;
      asio_bridge& b = *o->bridge_;
      if (b.shut_down_.load(std::memory_order_relaxed))
        return;
      runner* r = owner->this_thread_runner();
      // Re-arm first (also after -ECANCELED: the ring of an exited thread
      // was torn down and this runner took over), then run what is ready.
      // (Readiness drivers check the descriptor when the pass submits, after
      // run_asio below, as POLL_ADD does when the kernel takes the SQE.)
      b.armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      // The reactor's descriptor again: Asio's reactor makes a new one in
      // a child after fork (its notify_fork), and then this poll, which
      // waited on the parent's, has completed with -ECANCELED.
      o->watch(b.reactor_->*get(asio_epoll_fd()));
      r->start_internal(o);
      r->note_foreign_handlers(b.run_asio());
    }

    asio_bridge* bridge_;
  };

  // Runs what Asio has ready, without blocking; then lets Asio interrupt
  // its task again (also when a handler throws).
  //
  // Asio's poll() returns with task_interrupted_ set (each run of its task
  // sets it) and its mutex released. A handler posted to Asio's scheduler
  // by another thread in between (a reactor operation cancelled or
  // completed at its initiation, a resolver result) found the flag set and
  // wrote no interrupter, so nothing would make the poll fire for it. Hence,
  // under Asio's mutex: if Asio's queue holds anything besides its task
  // marker, write the interrupter now (the poll, re-armed before this call,
  // fires again and runs it); otherwise clear the flag, so that the next
  // post writes it.
  std::size_t run_asio()
  {
    struct rearm_interrupt
    {
      ad::scheduler& asio;
      ad::epoll_reactor& reactor;
      ~rearm_interrupt()
      {
        ad::conditionally_enabled_mutex::scoped_lock lock(asio.*get(asio_scheduler_mutex()));
        auto& queue = asio.*get(asio_op_queue());
        ad::scheduler_operation* const marker = &(asio.*get(asio_task_operation()));
        ad::scheduler_operation* const front = queue.front();
        const bool queued = front != nullptr
          && (front != marker || ad::op_queue_access::back(queue) != marker);
        asio.*get(asio_task_interrupted()) = queued;
        if (queued)
          reactor.interrupt();
      }
    } rearm{asio_, *reactor_};
    if (asio_.stopped())
      asio_.restart();
    boost::system::error_code ec;
    return asio_.poll(ec);
  }

  scheduler& zokio_;
  ad::scheduler& asio_;
  ad::epoll_reactor* reactor_ = nullptr; // written once by activate, before the poll is armed
  std::atomic<bool> active_{false};    // activate() has run
  std::atomic<bool> shut_down_{false}; // the context is shutting down: stop re-arming
  std::atomic<std::thread::id> armed_by_{}; // the thread whose ring holds the poll
  poll_op op_;
};

// Asio's task hook: the reactor, plus the bridge that drives it.
ad::scheduler_task* bridged_task(boost::asio::execution_context& ctx)
{
  auto& reactor = boost::asio::use_service<ad::epoll_reactor>(ctx);
  boost::asio::use_service<asio_bridge>(ctx).activate(reactor);
  return &reactor;
}

} // namespace

scheduler& install_scheduler(boost::asio::execution_context& ctx, int concurrency_hint,
    const driver_sizes& sizes, scheduler::context_kind kind)
{
  auto owned = std::make_unique<scheduler>(ctx, concurrency_hint, sizes);
  owned->set_kind(kind);
  boost::asio::add_service<scheduler>(ctx, owned.get());
  scheduler& impl = *owned.release(); // the registry owns it now

  // Asio's scheduler uses its mutex whatever the hint (the resolver's thread
  // and other threads post to it); a hint of 1 lets it keep handlers posted
  // from its own handlers on a private queue, as asio::io_context(1) does.
  const int hint = impl.concurrency_hint() == 1 ? 1 : 0;
  auto* asio = new ad::scheduler(ctx, hint, false, &bridged_task);
  boost::asio::add_service(ctx, asio);
  impl.add_idle_hook(&boost::asio::use_service<asio_bridge>(ctx));
  return impl;
}

} // namespace detail
} // namespace zokio
