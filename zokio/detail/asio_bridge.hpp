// zokio/detail/asio_bridge.hpp: Asio's own I/O objects (asio::ip::tcp::socket,
// asio::steady_timer, Beast's tcp_stream, asio::ip::tcp::resolver,
// asio::signal_set...) on a zokio context, driven by the threads that run the
// context: no thread of Asio's, no cross-thread hop per completion.
//
// Background: an Asio I/O object on an execution context that is not an
// asio::io_context reaches its reactor (epoll_reactor) through Asio's
// scheduler service, which by default starts a private thread to run the
// reactor; every completion then crosses from that thread to the context's
// executor.
//
// Protocol (as of this version):
//   1. install() registers Asio's scheduler on the zokio context at its
//      construction, before anything else can create it, with own_thread =
//      false (no thread) and a task hook (get_task). That costs a mutex, a
//      condition variable and a few hundred bytes: no descriptor, no
//      submission. A context that never uses an Asio object pays nothing
//      more.
//   2. Activation, at most once per context. Asio calls the task hook when
//      the first reactor-using object is constructed (a socket, acceptor,
//      timer, descriptor or signal_set service calls init_task). The hook
//      creates the reactor (three descriptors: epoll, eventfd, timerfd) and
//      activates the bridge: one unit of Asio scheduler work is held from
//      then on, Asio's task is marked interruptible, and a poll request on
//      the reactor's epoll descriptor (IORING_OP_POLL_ADD on io_uring; a
//      readiness wait in the driver's own epoll or kqueue set otherwise) is
//      armed as an *internal* step (runner::start_internal) in the driver
//      (ring) of the calling thread if it runs
//      the context, else of the next thread that runs it (post_internal,
//      which wakes a sleeper). Asio's resolver posts its completions to
//      Asio's scheduler without ever creating the reactor; a runner about to
//      sleep therefore asks the bridge (scheduler::idle_hook), and if Asio's
//      scheduler has work outstanding but no task yet, the bridge activates
//      itself by calling init_task.
//   3. The epoll set holds Asio's sockets, its timerfd and its interrupter,
//      so the poll fires for readiness, timer expiry and work posted to
//      Asio's scheduler alike. The runner that reaps it re-arms it first
//      (POLL_ADD checks readiness when the kernel takes the SQE, after what
//      follows, so nothing is missed), then runs Asio's scheduler without
//      blocking (scheduler::poll): the reactor performs the ready I/O, Asio's
//      operations complete, and their handlers are dispatched to the zokio
//      executor, which invokes them inline (this thread runs the context).
//   4. Afterwards Asio's task is marked interruptible again (its private
//      task_interrupted_ = false). Asio only interrupts its task when a
//      thread blocks in it, which never happens here; with the flag cleared,
//      work posted to Asio's scheduler from outside its poll (a timer
//      cancelled from a zokio handler, a resolver completion, another
//      thread) writes the reactor's interrupter, and the poll fires. Asio's
//      poll returns with the flag still set, so a post from another thread
//      just before it is cleared wrote nothing: the flag is cleared under
//      Asio's mutex only if Asio's queue is empty (but for its task marker);
//      otherwise the bridge writes the interrupter itself, and the poll
//      fires again for what was queued.
//
// Work counting: the poll is neither work nor a handler: run() returns when
// no Asio operation is pending even though the poll stays armed; run(),
// poll() and run_one() count the Asio handlers the poll ran (Asio's count),
// never the poll itself. Each pending Asio operation holds work on its I/O
// executor (handler_work tracks the zokio executor), so run() does not
// return while one is pending. The unit of Asio work held since activation
// keeps Asio's scheduler from stopping itself (it stops, and interrupts its
// task, each time its own count reaches zero).
//
// Threads: the poll lives in the ring of one thread (the one that armed it);
// Asio's objects make progress while that thread is inside a run function,
// and their handlers run there (posting from them to the zokio executor
// spreads work as usual). On a zokio::thread_pool that is one of the workers,
// which never leave run. An io_context run by several threads stays correct,
// but Asio's completions are served by that one thread; if it leaves run()
// while others keep running, Asio's objects wait until it returns (or until
// it exits: its runner, with the poll's completion, passes to the next
// thread that runs the context).
//
// Asio internals used (checked for Boost 1.81 by a static_assert): the
// scheduler's task_interrupted_, mutex_ and outstanding_work_, and
// epoll_reactor's epoll_fd_. Only the epoll reactor is bridged: the library
// does not compile with BOOST_ASIO_HAS_IO_URING_AS_DEFAULT or
// BOOST_ASIO_DISABLE_EPOLL, and a program that defines them for its own
// code (its Asio objects would then wait on Asio's io_uring service, which
// nothing drives) is not supported.
//
// Cost, as of this version: per Asio completion batch, one ring completion
// (the poll) and one epoll_wait of zero timeout inside Asio's poll, where
// asio::io_context makes one blocking epoll_wait; handlers reach the zokio
// executor through any_io_executor (Asio special-cases its own executor).
// Numbers: the "Asio sockets on zokio::io_context" rows of perf/run's echo
// table.
#ifndef ZOKIO_DETAIL_ASIO_BRIDGE_HPP
#define ZOKIO_DETAIL_ASIO_BRIDGE_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/sched/scheduler.hpp>

#include <boost/asio/execution_context.hpp>

namespace zokio {
namespace detail {

// The setup of every zokio context (io_context's and thread_pool's
// constructors): registers a new zokio scheduler of the given kind on ctx,
// then Asio's scheduler, without a thread of its own, and the bridge that
// drives it (see above), so that both are shut down before the zokio
// scheduler, and before anything can create Asio's scheduler with a thread.
// The scheduler is owned by ctx's service registry from the moment it is
// added. Throws what the scheduler's constructor throws (system_error when
// no backend can be set up).
scheduler& install_scheduler(boost::asio::execution_context& ctx, int concurrency_hint,
    const driver_sizes& sizes, scheduler::context_kind kind);

// A thread that leaves the context for good (a thread_pool worker whose run()
// returned, a thread that ran an io_context and exits) runs
// scheduler::retire_this_thread, which calls the bridge (its idle_hook): if
// the bridge's poll is in that thread's ring, it is cancelled and its
// completion waited for (at most a second), so that the runner's retirement
// reaps it and the runner can be freed. A ring whose owner thread has
// exited cannot be entered any more (IORING_SETUP_SINGLE_ISSUER,
// DEFER_TASKRUN), and a runner with an operation still in its ring is never
// freed.

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_ASIO_BRIDGE_HPP
