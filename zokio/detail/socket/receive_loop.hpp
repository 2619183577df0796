// zokio/detail/socket/receive_loop.hpp: the state behind
// basic_stream_socket::async_receive_each, a receive that stays armed: one
// object for the loop's whole life, the user's handler stored in it once and
// called for every chunk of data, and once more with the error that ends it.
//
// Life of a loop:
//   1. async_receive_each allocates it (the handler's associated allocator),
//      names it in the socket's state (socket_state::recv_loop_, one loop per
//      socket) and arms it.
//   2. Armed, it holds one receive into a buffer of its provided_buffer_pool
//      (recv_provided_op, constructed in the loop's own storage: no
//      allocation per receive). That receive is an ordinary socket
//      operation: linked to the socket, cancelled by cancel() and close(),
//      completed aborted when its thread leaves or the process forks.
//   3. Its completion calls the handler with the chunk (never inside
//      async_receive_each: the receive completes through the run loop), then
//      arms the loop again; the next chunk is never delivered before the
//      handler has returned for the previous one.
//   4. An error (eof, operation_aborted, no_buffer_space, a socket error) ends
//      the loop: the socket's state forgets it, its memory goes back to the
//      allocator, and the handler is called a last time with the error and
//      an empty buffer.
//
// Cancellation (the handler's cancellation slot, the socket's cancel() or
// close()) marks the loop under the socket's lock (stop_) and cancels the
// receive in flight; a loop marked while its handler runs ends instead of
// arming again. Either way the loop ends with operation_aborted, after
// every chunk already received has been delivered.
//
// Threads: the socket's lock guards recv_loop_ and stop_. Everything else is
// touched by one step at a time: the initiating call, then each completion
// of the receive (on any thread of the context) and the handler call it
// makes, which happen one after the other.
#ifndef ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP
#define ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP

#include <zokio/detail/socket/ops/recv_provided_op.hpp>
#include <zokio/detail/socket/socket_state.hpp>
#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/handler_work.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>

#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

class socket_service;

class receive_loop_base
{
public:
  receive_loop_base(const receive_loop_base&) = delete;
  receive_loop_base& operator=(const receive_loop_base&) = delete;

  // Under the socket's lock: the loop is to end (cancel, close). The receive
  // in flight is cancelled by the caller as any other operation of the socket.
  void mark_stop() noexcept { stop_ = true; }

protected:
  // The concrete loop's handler calls. b non-null: a chunk (ec success);
  // the loop continues after the call (after_chunk). b null: the end, with
  // ec; the concrete loop frees itself before calling. owner null: the
  // context is shutting down: free without calling.
  using deliver_func = void (*)(receive_loop_base* self, scheduler* owner,
      const boost::system::error_code& ec, provided_buffer* b);

  receive_loop_base(deliver_func deliver, socket_service& svc, provided_buffer_pool& pool,
      int flags) noexcept
    : deliver_(deliver), service_(svc), pool_(pool), flags_(flags)
  {
  }

  ~receive_loop_base() = default;

  // The initiating call: names the loop in st and arms it, or, when st is
  // closed (null) or already has a loop, completes the loop with that error
  // through the run loop. The loop counts as one unit of the scheduler's
  // work from here until its last call.
  void begin(socket_state* st) noexcept;

  // After the handler has returned from a chunk's call: arms the loop
  // again, or ends it if it was cancelled meanwhile.
  void after_chunk(scheduler& s) noexcept;

  // The end of the loop, after the concrete loop has freed its memory:
  // the unit of work counted at begin is given back.
  static void work_done(scheduler& s) noexcept;

  scheduler& owner() noexcept;

  // Forgets the loop in its socket's state and hands the end to deliver_.
  void end(scheduler* owner, const boost::system::error_code& ec);

private:
  class step_op;
  friend class step_op;

  // Constructs the receive in step_storage_ and starts it.
  void arm(socket_state* st) noexcept;

  // Ends the loop with err (an errno) through the run loop: a step that
  // completes at once (never inside the caller).
  void end_later(scheduler& s, int err) noexcept;

  // The receive completed (on a thread of the context, or owner null at
  // shutdown). Throws what the handler throws.
  void on_step(scheduler* owner, boost::system::error_code ec, provided_buffer b);

  // The receive made for the loop; lives in step_storage_ (one at a time).
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

  deliver_func deliver_;
  socket_service& service_;
  provided_buffer_pool& pool_;
  int flags_;
  socket_state* state_ = nullptr;  // the socket while the loop runs
  bool stop_ = false;              // under the socket's lock (mark_stop)
  bool step_live_ = false;         // step_storage_ holds a constructed step_op
  alignas(step_op) unsigned char step_storage_[sizeof(step_op)];
};

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

template <typename Handler, typename IoExecutor>
class receive_loop final : public receive_loop_base
{
public:
  using allocator_type = op_allocator_t<boost::asio::associated_allocator_t<Handler>>;
  using executor_type = boost::asio::associated_executor_t<Handler, IoExecutor>;

  // Allocates the loop with the handler's allocator and begins it.
  static void start(socket_service& svc, scheduler& s, socket_state* st,
      provided_buffer_pool& pool, int flags, Handler& handler, const IoExecutor& io_ex)
  {
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler));
    op_ptr<receive_loop, allocator_type> p(alloc);
    receive_loop* l = p.construct(svc, s, pool, flags, std::move(handler), io_ex);
    p.release();
    auto slot = boost::asio::get_associated_cancellation_slot(l->handler_);
    if (slot.is_connected() && st != nullptr)
      slot.template emplace<receive_loop_cancellation>(st, l);
    l->begin(st);
  }

  receive_loop(socket_service& svc, scheduler& s, provided_buffer_pool& pool, int flags,
      Handler&& handler, const IoExecutor& io_ex)
    : receive_loop_base(&do_deliver, svc, pool, flags), handler_(std::move(handler))
  {
    // The run loop calls the handler itself when its executor is the
    // context's; otherwise the executor is kept busy (outstanding work) for
    // the loop's life and each call goes through it.
    executor_type ex = boost::asio::get_associated_executor(handler_, io_ex);
    if (scheduler_of(ex) != &s)
      work_.emplace(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked));
  }

private:
  using tracked_executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const executor_type&>(), boost::asio::execution::outstanding_work.tracked))>;

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
    if (!self->work_)
      return self->call_chunk(*owner, std::move(*b));
    boost::asio::execution::execute(
        boost::asio::prefer(*self->work_, boost::asio::execution::blocking.possibly,
            boost::asio::execution::allocator(
                boost::asio::get_associated_allocator(self->handler_))),
        chunk_call(self, owner, std::move(*b)));
  }

  // Calls the handler with one chunk, then continues the loop, also when
  // the handler throws (the exception then leaves the run function, as
  // from any handler, with the loop armed again).
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
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler_));
    op_ptr<receive_loop, allocator_type> p(alloc, this);
    Handler handler(std::move(handler_));
    std::optional<tracked_executor> work(std::move(work_));
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
    if (!work)
    {
      std::move(bound)();
      return;
    }
    boost::asio::execution::execute(
        boost::asio::prefer(*work, boost::asio::execution::blocking.possibly,
            boost::asio::execution::allocator(
                boost::asio::get_associated_allocator(bound.handler_))),
        std::move(bound));
  }

  Handler handler_;
  std::optional<tracked_executor> work_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_RECEIVE_LOOP_HPP
