// zokio/detail/socket/receive_loop.hpp: the state behind
// basic_stream_socket::async_receive_each, a receive that stays armed: one
// object for the loop's whole life, the user's handler stored in it once and
// called for every chunk of data, and once more with the error that ends it.
//
// A loop is named in its socket's state (socket_state::recv_loop_, one loop
// per socket) from its start to its end. It runs in one of two modes, chosen
// on the thread that owns its pool's buffers (the pool's home runner) when
// the loop starts:
//
// Multishot (io_uring, where the kernel has multishot receive, 6.0, and the
// pool is a kernel buffer ring): the loop keeps one IORING_OP_RECV with
// IORING_RECV_MULTISHOT and IOSQE_BUFFER_SELECT in the home runner's ring,
// its user_data the loop's address tagged ring_tag. It holds no operation
// object and no buffer while the connection is idle: each CQE is handled in
// the harvest (on_ring_cqe), which links the buffer the kernel filled to the
// loop's pending chunks (through the pool's per-buffer records) and queues
// the loop itself (it is an operation) to deliver them. The kernel ends the
// request (a CQE without IORING_CQE_F_MORE) on end of stream, an error, a
// cancel, or with -ENOBUFS when its buffer ring is empty: the loop arms it
// again if it has no reason to end (buffers released on other threads are
// put back in the ring first; chunks it still holds come back as they are
// consumed).
//
// A dry pool (both modes): a loop that finds no buffer and holds none waits
// on the pool's list (provided_buffer_pool::park) without a request, the
// data staying in the socket; each buffer given back resumes one waiting
// loop, which makes its request again. A cancel takes it off the list.
//
// Chain (every other case: epoll, kqueue, io_uring without multishot receive
// or buffer rings): the loop makes one receive at a time (recv_provided_op,
// constructed in storage the loop allocates once), arming the next when the
// handler has returned. That receive is an ordinary socket operation:
// cancelled with the socket's others, made again or completed when its
// thread leaves or the process forks.
//
// Either way chunks reach the handler in order, one call at a time, never
// inside the initiating function; the end comes after every chunk received.
//
// Cancellation (the handler's slot, the socket's cancel() and close())
// marks the loop (stop_) under the socket's lock. Chain: the receive in
// flight is cancelled with the socket's operations. Multishot: the loop is
// handed to its home runner (which alone may use its ring), which asks the
// kernel to cancel the request; its last CQE then ends the loop with
// operation_aborted.
//
// Threads (multishot): the fields marked "lock" are guarded by the socket's
// lock_; a queued loop (queued_) is run by one thread at a time (any thread
// of the context, or its home runner when the ring must be used); ring
// requests are made only on the home runner's thread.
//
// Work: a loop counts as one unit of the scheduler's outstanding work from
// its start until its last call; each time it is queued, the queued run
// counts as one more, as any queued operation does.
#ifndef ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP
#define ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP

#include <zokio/detail/socket/ops/recv_provided_op.hpp>
#include <zokio/detail/socket/socket_state.hpp>
#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/handler_work.hpp>
#include <zokio/detail/operation.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

class op_queue;
class runner;
class socket_service;

class receive_loop_base : public operation
{
public:
  receive_loop_base(const receive_loop_base&) = delete;
  receive_loop_base& operator=(const receive_loop_base&) = delete;

  // The io_uring driver's user_data tag of a loop's multishot receive
  // (loops are 8-byte aligned; the driver's other tags use bits 0 and 1).
  static constexpr std::uint64_t ring_tag = 4;

  // Under the socket's lock: the loop is to end (cancel, close). True when
  // the caller must then call dispatch_stop (not under the lock): the
  // multishot request is in the ring and nothing else will look at the loop
  // before data arrives. (Chain: the receive in flight is cancelled by the
  // caller with the socket's other operations.)
  bool mark_stop() noexcept;

  // Hands a loop marked by mark_stop to its home runner, which cancels the
  // request. Any thread.
  void dispatch_stop() noexcept;

  // io_uring driver, in its harvest (the home runner's thread): a CQE of
  // the loop's multishot receive.
  static void on_ring_cqe(receive_loop_base* l, runner& r, int res, unsigned flags,
      op_queue& out) noexcept;

  // io_uring driver: the user_data of l's multishot receive.
  static std::uint64_t ring_user_data(const receive_loop_base* l) noexcept
  {
    return reinterpret_cast<std::uintptr_t>(l) | ring_tag;
  }

  // Under the socket's lock: the loop's multishot request is in a ring and
  // names the descriptor, which a close() then leaves open until the loop
  // has ended (end() closes it).
  bool holds_request() const noexcept { return armed_; }

  // Under the socket's lock: whether the loop's multishot request is in r's
  // ring (shutdown and fork walks, socket_service::for_each_receive_loop).
  bool armed_on(const runner& r) const noexcept { return armed_ && home() == &r; }

  // A child after fork(), single-threaded: the parent's ring held the
  // request and is gone; the loop ends with operation_aborted (the pool's
  // buffer ring was the parent's too). Under the socket's lock, which the
  // walk holds: marks it; forked_end (after the walk) queues the end.
  void mark_forked() noexcept { armed_ = false; final_ = ECANCELED; }
  void forked_end(runner& r) noexcept;

  // provided_buffer_pool's waiting list (park), under the list's mutex:
  // the link, and the resume of a listed loop when a buffer comes back.
  // The link is the operation's queue link (operation::next_): a loop on
  // the list is in no queue (it holds its own turn, queued_, and whoever
  // queues it takes it off the list first: dispatch_stop, resume).
  static receive_loop_base* wait_next(receive_loop_base* l) noexcept
  {
    return static_cast<receive_loop_base*>(l->next_);
  }
  static void set_wait_next(receive_loop_base* l, receive_loop_base* next) noexcept
  {
    l->next_ = next;
  }
  static void resume(receive_loop_base* l) noexcept;

protected:
  // The concrete loop's handler calls. b non-null: a chunk (ec success);
  // the loop continues after the call (after_chunk). b null: the end, with
  // ec; the concrete loop frees itself before calling. owner null: the
  // context is shutting down: free without calling.
  using deliver_func = void (*)(receive_loop_base* self, scheduler* owner,
      const boost::system::error_code& ec, provided_buffer* b);

  receive_loop_base(deliver_func deliver, socket_state& st, provided_buffer_pool& pool,
      int flags) noexcept
    : operation(&do_run), deliver_(deliver), pool_(pool), state_(&st),
      flags_(static_cast<std::uint16_t>(flags))
  {
  }

  ~receive_loop_base();

  // The initiating call: names the loop in its socket's state and starts
  // it, or, when the socket already has a loop, ends it with already_started
  // through the run loop.
  void begin() noexcept;

  // After the handler has returned from a chunk's call (on the thread that
  // made the call): the loop goes on, or ends if it was cancelled.
  void after_chunk(scheduler& s) noexcept;

  // Forgets the loop in its socket's state and hands the end to deliver_.
  void end(scheduler* owner, const boost::system::error_code& ec);

  // The end of the loop, after the concrete loop has freed its memory:
  // the unit of work counted at begin is given back.
  static void work_done(scheduler& s) noexcept;

  scheduler& owner() noexcept;

private:
  class step_op;
  friend class step_op;

  enum class mode_type : unsigned char { undecided, chain, multishot };

  static constexpr std::uint16_t nil_pending = 0xffff;

  // The loop as a queued operation: its next step (deliver a chunk, end,
  // start, arm or cancel the request). owner null: shutdown.
  static void do_run(scheduler* owner, operation* base);

  // On a thread of the context: picks the mode and starts (the pool binds
  // to a runner here).
  void start_here(scheduler& s, runner& here) noexcept;

  // Queues the loop to run (queued_ set by the caller, under the lock),
  // counting the run as work; on `to` (its thread and no other) or, null,
  // wherever the scheduler runs it.
  void queue(scheduler& s, runner* to) noexcept;

  // Multishot, home runner's thread, not under the lock: makes the request.
  void arm_ring(runner& home) noexcept;

  // Chain: constructs the receive in step_ and starts it.
  void arm_chain(socket_state* st) noexcept;

  // The chain's receive completed (owner null: shutdown). Throws what the
  // handler throws.
  void on_step(scheduler* owner, boost::system::error_code ec, provided_buffer b);

  // Ends the loop with err (an errno) through the run loop.
  void end_later(scheduler& s, int err) noexcept;

  // The pool had no buffer for the loop: it waits on the pool's list until
  // one comes back (or until it is cancelled). The caller holds the loop's
  // turn (queued_) and has set parked_, under the lock; not under it now.
  void wait_for_buffer(scheduler& s) noexcept;

  // The next step of a queued loop (queued_ is set), on a thread that runs
  // the context: deliver a pending chunk, end, or make or cancel the
  // request (on the home runner: handed there first).
  void step(scheduler& s);

  // Whether multishot mode can be used at all in this process (io_uring
  // with multishot receive and buffer rings).
  bool multishot_possible() noexcept;

  // The receive of the chain mode; lives in step_ (one at a time).
  class step_op final : public recv_provided_op_base
  {
  public:
    step_op(receive_loop_base* loop, provided_buffer_pool& pool, int flags) noexcept
      : recv_provided_op_base(&do_complete, pool, flags), loop_(loop)
    {
    }

    using socket_op::attach;
    using socket_op::complete_now;

  private:
    static void do_complete(scheduler* owner, operation* base);

    receive_loop_base* const loop_;
  };

  // The runner whose ring holds the multishot request: the pool's home.
  runner* home() const noexcept { return pool_.route(nullptr); }

  // Packed to 64 bytes (with the operation's 16): a loop with a
  // pointer-sized handler is 72, one 80-byte block of malloc's.
  deliver_func deliver_;
  provided_buffer_pool& pool_;
  socket_state* const state_;        // the socket's (states outlive their sockets)
  step_op* step_ = nullptr;          // chain: the receive's storage (allocated once)
  std::uint32_t epoch_ = 0;          // the pool's returns() when the request was made
  std::int16_t final_ = 0;           // lock: the errno that ends the loop (or end_of_stream), or 0
  std::uint16_t flags_;              // the receive's message flags (start checks they fit)
  // lock: chunks received, not delivered: a list of pool ids through the
  // pool's records (a pool holds at most 32768 buffers; nil_pending ends it).
  std::uint16_t pend_head_ = nil_pending;
  std::uint16_t pend_tail_ = nil_pending;
  mode_type mode_ = mode_type::undecided;
  bool cancel_sent_ = false;         // home thread: the request has been asked to stop
  bool step_live_ = false;           // chain: step_ holds a constructed step_op
  // lock: one byte for the four flags that are only ever read or written
  // under the socket's lock (a bit-field is one memory location: a flag
  // touched without that lock could not be among them).
  bool stop_ : 1 = false;            // lock: cancelled (mark_stop)
  bool armed_ : 1 = false;           // lock: the multishot request is in the home runner's ring
  bool parked_ : 1 = false;          // lock: on the pool's waiting list (or going there)
  bool queued_ : 1 = false;          // lock: the loop is queued or being run
};

// The memory of a loop: the handler's associated allocator, and for the
// default one plain operator new. Not the recycling allocator of the
// operations (handler_alloc.hpp): a loop lives as long as its connection,
// so a per-thread cache of freed blocks gains nothing, and its size tag
// (one byte after the object, rounded up to 16) would make an 88-byte loop
// a 112-byte allocation.
template <typename Alloc>
struct loop_allocator
{
  using type = Alloc;
  static type get(const Alloc& a) noexcept { return a; }
};

template <typename T>
struct loop_allocator<std::allocator<T>>
{
  using type = std::allocator<void>;
  static type get(const std::allocator<T>&) noexcept { return type(); }
};

template <typename Alloc>
using loop_allocator_t = typename loop_allocator<Alloc>::type;

// Installed in the handler's cancellation slot: ends the loop whose address
// is key if the socket still runs it. It names the socket's state (never
// freed before the service) rather than the loop, so a signal emitted while
// the loop ends on another thread finds no loop instead of freed memory.
class receive_loop_cancellation
{
public:
  receive_loop_cancellation(socket_state* st, receive_loop_base* key) noexcept
    : state_(st), key_(key)
  {
  }

  void operator()(boost::asio::cancellation_type_t type);

private:
  socket_state* state_;
  receive_loop_base* key_;
};

// Tracked: the handler's executor is not the context's, so the loop keeps
// it busy (outstanding work) for its life and calls the handler through it.
// Chosen when the loop starts; a loop whose handler runs on the context
// itself carries no executor.
template <typename Handler, typename IoExecutor, bool Tracked = false>
class receive_loop final : public receive_loop_base
{
public:
  using allocator_type = loop_allocator_t<boost::asio::associated_allocator_t<Handler>>;
  using executor_type = boost::asio::associated_executor_t<Handler, IoExecutor>;

  // Allocates the loop with the handler's allocator and begins it.
  static void start(scheduler& s, socket_state* st, provided_buffer_pool& pool, int flags,
      Handler& handler, const IoExecutor& io_ex)
  {
    executor_type ex = boost::asio::get_associated_executor(handler, io_ex);
    if (st == nullptr || flags < 0 || flags > 0xffff)
    {
      // A closed socket, or flags that are no message flags of a receive
      // (Asio's all fit in 16 bits): the one call, as if posted, with no
      // loop made.
      boost::asio::post(ex, boost::asio::detail::move_binder2<Handler,
          boost::system::error_code, provided_buffer>(0, std::move(handler),
              st == nullptr ? boost::asio::error::bad_descriptor
                            : boost::asio::error::invalid_argument,
              provided_buffer()));
      return;
    }
    if (scheduler_of(ex) != &s)
      return receive_loop<Handler, IoExecutor, true>::create(*st, pool, flags, handler, ex);
    create(*st, pool, flags, handler, ex);
  }

  static void create(socket_state& st, provided_buffer_pool& pool, int flags, Handler& handler,
      const executor_type& ex)
  {
    allocator_type alloc = loop_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler));
    op_ptr<receive_loop, allocator_type> p(alloc);
    receive_loop* l = p.construct(st, pool, flags, std::move(handler), ex);
    p.release();
    auto slot = boost::asio::get_associated_cancellation_slot(l->handler_);
    if (slot.is_connected())
      slot.template emplace<receive_loop_cancellation>(&st, l);
    l->begin();
  }

  receive_loop(socket_state& st, provided_buffer_pool& pool, int flags, Handler&& handler,
      const executor_type& ex)
    : receive_loop_base(&do_deliver, st, pool, flags), handler_(std::move(handler))
  {
    if constexpr (Tracked)
      work_.emplace(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked));
    else
      (void)ex;
  }

private:
  template <typename, typename, bool> friend class receive_loop;

  using tracked_executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const executor_type&>(), boost::asio::execution::outstanding_work.tracked))>;
  struct no_executor {};
  using work_type = std::conditional_t<Tracked, std::optional<tracked_executor>, no_executor>;

  // Hands f (the handler bound to its arguments) to the handler's executor.
  template <typename Function>
  static void execute(tracked_executor& ex, const Handler& h, Function&& f)
  {
    boost::asio::execution::execute(
        boost::asio::prefer(ex, boost::asio::execution::blocking.possibly,
            boost::asio::execution::allocator(boost::asio::get_associated_allocator(h))),
        std::forward<Function>(f));
  }

  // A chunk's call through the handler's executor, which may run it later or
  // on another thread; the loop continues from there (after_chunk). Destroyed
  // uncalled (that executor's context shut down), it lets the loop end.
  class chunk_call
  {
  public:
    chunk_call(receive_loop* l, scheduler* s, provided_buffer b) noexcept
      : loop_(l), owner_(s), buffer_(std::move(b))
    {
    }
    chunk_call(chunk_call&& o) noexcept
      : loop_(std::exchange(o.loop_, nullptr)), owner_(o.owner_), buffer_(std::move(o.buffer_))
    {
    }
    ~chunk_call()
    {
      if (receive_loop* l = std::exchange(loop_, nullptr))
        l->end(nullptr, boost::asio::error::operation_aborted);
    }
    void operator()()
    {
      receive_loop* l = std::exchange(loop_, nullptr);
      l->call_chunk(*owner_, std::move(buffer_));
    }

  private:
    receive_loop* loop_;
    scheduler* owner_;
    provided_buffer buffer_;
  };

  static void do_deliver(receive_loop_base* base, scheduler* owner,
      const boost::system::error_code& ec, provided_buffer* b)
  {
    auto* self = static_cast<receive_loop*>(base);
    if (b == nullptr || owner == nullptr)
      return self->finish(owner, ec);
    if constexpr (Tracked)
      execute(*self->work_, self->handler_, chunk_call(self, owner, std::move(*b)));
    else
      self->call_chunk(*owner, std::move(*b));
  }

  // Calls the handler with one chunk, then continues the loop, also when
  // the handler throws (the exception then leaves the run function, as
  // from any handler, with the loop going on).
  void call_chunk(scheduler& s, provided_buffer b)
  {
    struct continue_loop
    {
      receive_loop* l;
      scheduler& s;
      ~continue_loop() { l->after_chunk(s); }
    } guard{this, s};
    handler_(boost::system::error_code(), std::move(b));
  }

  // The end: clears the cancellation slot (its handler names this loop),
  // frees the loop and, unless the context is shutting down (owner null),
  // calls the handler a last time, through its executor.
  void finish(scheduler* owner, const boost::system::error_code& ec)
  {
    auto slot = boost::asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected())
      slot.clear();
    scheduler& s = receive_loop_base::owner();
    allocator_type alloc = loop_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler_));
    op_ptr<receive_loop, allocator_type> p(alloc, this);
    Handler handler(std::move(handler_));
    work_type work(std::move(work_));
    p.reset();
    if (owner == nullptr)
      return;
    boost::asio::detail::move_binder2<Handler, boost::system::error_code, provided_buffer>
        bound(0, std::move(handler), ec, provided_buffer());
    struct give_back
    {
      scheduler& s;
      ~give_back() { work_done(s); }
    } counted{s};
    if constexpr (Tracked)
      execute(*work, bound.handler_, std::move(bound));
    else
      std::move(bound)();
  }

  Handler handler_;
  [[no_unique_address]] work_type work_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP
