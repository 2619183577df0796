// zokio/detail/socket/socket_service.hpp: the implementation behind zokio's
// socket and acceptor objects, one service per context.
//
// Each open socket has a socket_state (socket_state.hpp) from the service's
// pool; asynchronous operations are socket_ops (socket_op.hpp) started on
// the driver of the thread that starts them (its ring, on io_uring). Synchronous calls (bind, listen,
// setsockopt, blocking send/receive...) are Asio's socket_ops functions on
// the descriptor.
//
// Close protocol: close() (or destruction) detaches the state from the socket
// object and asks for the cancellation of every operation linked to it. If
// none is linked, the descriptor is closed at once; otherwise the last
// operation to complete closes it. Until then the descriptor number stays
// taken, so no open() in between can receive it while a request naming it
// may still be issued by the kernel.
#ifndef ZOKIO_DETAIL_SOCKET_SOCKET_SERVICE_HPP
#define ZOKIO_DETAIL_SOCKET_SOCKET_SERVICE_HPP

#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/uring/accept_engine.hpp>
#include <zokio/detail/socket/ops/accept_op.hpp>
#include <zokio/detail/socket/ops/connect_op.hpp>
#include <zokio/detail/socket/ops/file_request_op.hpp>
#include <zokio/detail/socket/ops/poll_op.hpp>
#include <zokio/detail/socket/ops/recv_op.hpp>
#include <zokio/detail/socket/ops/recv_provided_op.hpp>
#include <zokio/detail/socket/ops/send_op.hpp>
#include <zokio/detail/socket/ops/transfer_op.hpp>
#include <zokio/detail/socket/ops/waitid_op.hpp>
#include <zokio/detail/socket/descriptor_io.hpp>
#include <zokio/detail/socket/receive_loop.hpp>
#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>
#include <zokio/detail/socket/socket_state.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/socket_base.hpp>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <poll.h>

namespace zokio {
namespace detail {

class socket_service
  : public boost::asio::detail::execution_context_service_base<socket_service>
{
public:
  // State of one socket object: its shared state (null when closed) and the
  // protocol it was opened with.
  template <typename Protocol>
  struct implementation_type
  {
    implementation_type() : protocol_(typename Protocol::endpoint().protocol()) {}

    socket_state* state_ = nullptr;
    Protocol protocol_;
  };

  explicit socket_service(boost::asio::execution_context& ctx);
  ~socket_service();

  // Operations still queued are destroyed by the scheduler's shutdown, which
  // runs after this one (it was created first); nothing to do here.
  void shutdown() override;

  scheduler& owner() noexcept { return scheduler_; }

  // See scheduler::for_each_held: f(op, arg) for each operation linked to a
  // socket whose home is r (parked accepts excluded: they hold no request).
  // Walks every state of the pool, each under its lock. Any thread.
  void for_each_held(runner& r, scheduler::held_visitor f, void* arg) noexcept;

  // See scheduler::for_each_receive_loop: f(loop, arg), under the socket's
  // lock, for each loop whose multishot request is in r's ring.
  void for_each_receive_loop(runner& r, scheduler::loop_visitor f, void* arg) noexcept;

  // Creates a descriptor (close-on-exec) and a state for it.
  socket_state* open(int family, int type, int protocol, boost::system::error_code& ec);

  // Wraps an existing descriptor; stream tells whether it is stream-oriented
  // (a zero-byte receive then means end of stream). io_hints: the hints of
  // its reads and writes (socket_state::io_hints_); with
  // io_request::blocking (a regular file) the descriptor is left blocking
  // on the readiness backends, whose blocking pool makes its calls.
  socket_state* assign(int fd, bool stream, boost::system::error_code& ec,
      std::uint8_t io_hints = 0);

  // Detaches the state from its socket object and cancels its operations;
  // the descriptor is closed now or when the last operation completes. st
  // becomes null. Closing a closed socket succeeds. With destruction set (a
  // socket object's destructor), a lingering close is made non-blocking, as
  // in Asio; a close deferred to the last operation's completion always is,
  // since it runs inside the event loop.
  void close(socket_state*& st, boost::system::error_code& ec,
      bool destruction = false) noexcept;

  // As close(), but the descriptor is not closed: it is returned (or -1 with
  // ec set). Operations in flight complete with operation_aborted.
  int release(socket_state*& st, boost::system::error_code& ec) noexcept;

  // Cancels every operation of the socket (each completes with
  // operation_aborted, or with its result if it was already done). Any thread.
  void cancel(socket_state* st) noexcept;

  // Cancels the operation whose cancellation key is key. Any thread.
  void cancel_by_key(socket_state& st, void* key) noexcept;

  // Ends the receive loop key if st still runs it (its cancellation slot).
  // Any thread.
  void cancel_receive_loop(socket_state& st, receive_loop_base* key) noexcept;

  // Returns a drained state to the pool, closing its descriptor unless it
  // was released.
  void reclaim(socket_state* st) noexcept;

  // Asynchronous operations. Each takes the handler by reference and moves
  // it into the operation; the handler runs as if posted.

  template <std::size_t MaxBuffers, typename MutableBufferSequence, typename Handler,
      typename IoExecutor>
  void async_receive(socket_state* st, bool is_stream, const MutableBufferSequence& buffers,
      int flags, Handler& handler, const IoExecutor& io_ex)
  {
    using op = recv_op<MutableBufferSequence, MaxBuffers, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, buffers, flags, is_stream);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    if (is_stream && o->total_size() == 0)
      return o->complete_now(scheduler_, 0);
    start(o, st, slot);
  }

  // Receives into a buffer of pool (recv_provided_op.hpp).
  template <typename Handler, typename IoExecutor>
  void async_receive_provided(socket_state* st, provided_buffer_pool& pool, int flags,
      Handler& handler, const IoExecutor& io_ex)
  {
    using op = recv_provided_op<Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, pool, flags);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  // Receives into buffers of pool until an error, calling the handler for
  // each chunk (receive_loop.hpp).
  template <typename Handler, typename IoExecutor>
  void async_receive_each(socket_state* st, provided_buffer_pool& pool, int flags,
      Handler& handler, const IoExecutor& io_ex)
  {
    receive_loop<Handler, IoExecutor>::start(scheduler_, st, pool, flags, handler, io_ex);
  }

  template <typename MutableBufferSequence, typename Endpoint, typename Handler,
      typename IoExecutor>
  void async_receive_from(socket_state* st, const MutableBufferSequence& buffers,
      Endpoint& sender, int flags, Handler& handler, const IoExecutor& io_ex)
  {
    using op = recvfrom_op<MutableBufferSequence, Endpoint, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, buffers, sender, flags);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  template <std::size_t MaxBuffers, typename ConstBufferSequence, typename Handler,
      typename IoExecutor>
  void async_send(socket_state* st, bool is_stream, const ConstBufferSequence& buffers,
      int flags, Handler& handler, const IoExecutor& io_ex)
  {
    using op = send_op<ConstBufferSequence, MaxBuffers, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, buffers, flags);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    if (is_stream && o->total_size() == 0)
      return o->complete_now(scheduler_, 0);
    start(o, st, slot);
  }

  template <typename ConstBufferSequence, typename Endpoint, typename Handler,
      typename IoExecutor>
  void async_send_to(socket_state* st, const ConstBufferSequence& buffers,
      const Endpoint& destination, int flags, Handler& handler, const IoExecutor& io_ex)
  {
    using op = sendto_op<ConstBufferSequence, Endpoint, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, buffers, destination, flags);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  // Reads (Buffer mutable_buffer) or writes (const_buffer) at offset, or at
  // the current position when offset is -1: descriptors, pipes and files.
  template <typename Buffer, typename BufferSequence, typename Handler, typename IoExecutor>
  void async_transfer(socket_state* st, std::int64_t offset, const BufferSequence& buffers,
      Handler& handler, const IoExecutor& io_ex)
  {
    using op = transfer_op<Buffer, BufferSequence, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, buffers, offset);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    if (o->total_size() == 0)
      return o->complete_now(scheduler_, 0);
    // A read never raises SIGPIPE: its completion need not look for one.
    o->req_.hints |= std::is_same_v<Buffer, boost::asio::mutable_buffer>
        ? static_cast<std::uint8_t>(st->io_hints_ & ~io_request::no_sigpipe) : st->io_hints_;
    if constexpr (std::is_same_v<Buffer, boost::asio::mutable_buffer>)
      if ((st->io_hints_ & io_request::blocking) && try_cached_read(o, st))
        return;
    start(o, st, slot);
  }

  // fsync (data_only: fdatasync) of a file.
  template <typename Handler, typename IoExecutor>
  void async_fsync(socket_state* st, bool data_only, Handler& handler, const IoExecutor& io_ex)
  {
    using op = fsync_op<Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, data_only);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    o->req_.hints |= st->io_hints_ & io_request::blocking;
    start(o, st, slot);
  }

  // Opens path (flags: open(2)'s, close-on-exec added) and hands the
  // handler a File on file_ex that owns the descriptor.
  template <typename File, typename Handler, typename IoExecutor>
  void async_open_file(const typename File::executor_type& file_ex, std::string path,
      int flags, Handler& handler, const IoExecutor& io_ex)
  {
    using op = open_file_op<File, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, file_ex, std::move(path), flags);
    if (!driver_makes(io_request::openat))
      return o->complete_now(scheduler_, make_request_now(o->req_));
    socket_state* st = request_state();
    if (st == nullptr)
      return o->complete_now(scheduler_, -ENOMEM);
    o->req_.hints |= io_request::blocking;
    start(o, st, slot);
  }

  // The size of st's file (std::uint64_t to the handler).
  template <typename Handler, typename IoExecutor>
  void async_file_size(socket_state* st, Handler& handler, const IoExecutor& io_ex)
  {
    using op = file_size_op<Handler, IoExecutor>;
    start_file_request(bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_), st, boost::asio::get_associated_cancellation_slot(handler));
  }

  // Truncates or extends st's file to length bytes.
  template <typename Handler, typename IoExecutor>
  void async_ftruncate(socket_state* st, std::int64_t length, Handler& handler,
      const IoExecutor& io_ex)
  {
    using op = ftruncate_op<Handler, IoExecutor>;
    start_file_request(bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, length), st, boost::asio::get_associated_cancellation_slot(handler));
  }

  // Connects st (which the caller has opened). If opening failed the caller
  // passes the error as open_error and the operation completes with it.
  template <typename Endpoint, typename Handler, typename IoExecutor>
  void async_connect(socket_state* st, const Endpoint& peer, int open_error,
      Handler& handler, const IoExecutor& io_ex)
  {
    using op = connect_op<Endpoint, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, peer);
    if (open_error != 0)
      return o->complete_now(scheduler_, -open_error);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  template <typename Handler, typename IoExecutor>
  void async_wait(socket_state* st, boost::asio::socket_base::wait_type w, Handler& handler,
      const IoExecutor& io_ex)
  {
    using op = poll_op<Handler, IoExecutor>;
    unsigned events = 0;
    switch (w)
    {
    case boost::asio::socket_base::wait_read:
      events = POLLIN;
      break;
    case boost::asio::socket_base::wait_write:
      events = POLLOUT;
      break;
    case boost::asio::socket_base::wait_error:
      events = POLLPRI | POLLERR | POLLHUP;
      break;
    }
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, events);
    if (events == 0)
      return o->complete_now(scheduler_, -EINVAL);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  // io_uring with net_features::waitid only: waits for (and reaps) the
  // child pid, whose pidfd is st, writing its siginfo into info.
  template <typename Handler, typename IoExecutor>
  void async_waitid(socket_state* st, int pid, ::siginfo_t* info, Handler& handler,
      const IoExecutor& io_ex)
  {
    using op = waitid_op<Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, pid, info);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start(o, st, slot);
  }

  // Accepts into peer, which must not be open.
  template <typename Socket, typename Handler, typename IoExecutor>
  void async_accept(socket_state* st, Socket& peer, typename Socket::endpoint_type* peer_endpoint,
      const typename Socket::protocol_type& protocol, Handler& handler, const IoExecutor& io_ex)
  {
    using op = accept_op<Socket, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, peer, peer_endpoint, protocol);
    if (peer.is_open())
      return o->complete_now(scheduler_, socket_op::already_open_result);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start_accept(o, st, slot);
  }

  // Accepts a new Socket (on peer_ex), handed to the handler.
  template <typename Socket, typename Handler, typename IoExecutor>
  void async_move_accept(socket_state* st, const typename Socket::executor_type& peer_ex,
      typename Socket::endpoint_type* peer_endpoint,
      const typename Socket::protocol_type& protocol, Handler& handler, const IoExecutor& io_ex)
  {
    using op = move_accept_op<Socket, Handler, IoExecutor>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    op* o = bound_handler<Handler, IoExecutor>::template create<op>(
        handler, io_ex, scheduler_, peer_ex, peer_endpoint, protocol);
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    start_accept(o, st, slot);
  }

private:
  friend class receive_loop_base;

  template <typename Slot>
  void start(socket_op* o, socket_state* st, Slot& slot)
  {
    o->attach(st);
    if (scheduler_.backend() != zokio::backend::io_uring
        && !(st->io_hints_ & io_request::blocking)
        && !(st->flags_ & (boost::asio::detail::socket_ops::user_set_non_blocking
            | boost::asio::detail::socket_ops::internal_non_blocking)))
      if (int err = make_non_blocking(*st))
        return o->complete_now(scheduler_, -err);
    if (slot.is_connected())
      o->cancellation_key_ = &slot.template emplace<socket_op_cancellation>(st);
    o->start(scheduler_);
  }

  // A request on an open file (statx, ftruncate): made by the driver where
  // it can, else on this thread (file_request_op.hpp).
  template <typename Slot>
  void start_file_request(socket_op* o, socket_state* st, Slot slot)
  {
    if (st == nullptr)
      return o->complete_now(scheduler_, -EBADF);
    if (!driver_makes(o->req_.kind))
    {
      o->req_.fd = st->fd_;
      return o->complete_now(scheduler_, make_request_now(o->req_));
    }
    o->req_.hints |= io_request::blocking;
    start(o, st, slot);
  }

  // A regular file's read whose data the page cache holds is made here and
  // now (one preadv2 with RWF_NOWAIT) and completes as if posted: on this
  // kernel a page-cache read through io_uring costs more than the plain
  // call, and the readiness backends' alternative is a blocking-pool
  // thread. Otherwise (the data is not cached: EAGAIN; or any error, which
  // the request then reports as the driver makes it) false, and the read
  // goes to the driver as usual. A stream file (offset -1) is read here only
  // when nothing else is in flight on it, so its reads keep their order.
  bool try_cached_read(socket_op* o, socket_state* st) noexcept
  {
    if (!cached_reads_enabled() || st->no_cached_reads_.load(std::memory_order_relaxed))
      return false;
    if (o->req_.offset < 0)
    {
      st->lock_.lock();
      const bool busy = st->ops_ != nullptr;
      st->lock_.unlock();
      if (busy)
        return false;
    }
    o->req_.fd = st->fd_;
    const int r = read_cached(o->req_);
    if (r < 0)
    {
      if (r == -EOPNOTSUPP)
        st->no_cached_reads_.store(true, std::memory_order_relaxed);
      return false;
    }
    o->complete_now(scheduler_, r);
    return true;
  }

  // Whether this context's driver makes a file request of kind k (a ring
  // with its opcode, or a readiness driver's blocking pool).
  bool driver_makes(io_request::kind_type k) const noexcept;

  // A state that holds no descriptor, for an operation that has none yet
  // (an open): it goes back to the pool when the operation completes. Null
  // if no memory.
  socket_state* request_state() noexcept;

  // Accepts go through the acceptor's multishot engine where enabled
  // (accept_engine.hpp; every accept of the acceptor, so none waits in the
  // kernel while the engine holds a connection); otherwise, when the engine
  // declines (the kernel refused multishot accept) or cannot be allocated,
  // each is one accept request of its own.
  template <typename Slot>
  void start_accept(socket_op* o, socket_state* st, Slot& slot)
  {
    // (io_uring only: the engine is a multishot request.)
    if (scheduler_.backend() != zokio::backend::io_uring || !accept_engine::enabled())
      return start(o, st, slot);
    o->attach(st);
    if (slot.is_connected())
      o->cancellation_key_ = &slot.template emplace<socket_op_cancellation>(st);
    try
    {
      if (accept_engine::start(scheduler_, *st, o))
        return;
    }
    catch (const std::bad_alloc&)
    {
    }
    o->start(scheduler_);
  }

  socket_state* allocate_state();

  // Readiness backends: the descriptor must not block when the driver makes
  // its system calls. As Asio's reactor does before each asynchronous
  // operation: sets internal_non_blocking unless a non-blocking mode is set
  // (a user's non_blocking(false) clears both, so it is set again here).
  // Returns 0 or the errno of the ioctl. The socket's owner thread.
  int make_non_blocking(socket_state& st) noexcept;

  // Returns a state that never held a socket (assign failed) to the pool;
  // the descriptor stays the caller's.
  void reclaim_unopened(socket_state* st) noexcept;

  // States per slab. Arbitrary: small enough that a program with a few
  // sockets allocates little, large enough that ten thousand connections
  // make a few dozen allocations.
  static constexpr std::size_t slab_size = 256;

  scheduler& scheduler_;
  std::mutex pool_mutex_;
  socket_state* free_ = nullptr;
  std::vector<std::unique_ptr<socket_state[]>> slabs_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_SOCKET_SERVICE_HPP
