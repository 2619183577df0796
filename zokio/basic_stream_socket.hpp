// zokio/basic_stream_socket.hpp: a stream-oriented socket on a zokio
// context, with the interface of boost::asio::basic_stream_socket.
#ifndef ZOKIO_BASIC_STREAM_SOCKET_HPP
#define ZOKIO_BASIC_STREAM_SOCKET_HPP

#include <zokio/basic_socket.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/buffer_sequence_adapter.hpp>

namespace zokio {

/// Provides stream-oriented socket functionality on a zokio context.
/**
 * The interface of boost::asio::basic_stream_socket; it satisfies Asio's
 * AsyncReadStream, AsyncWriteStream, SyncReadStream and SyncWriteStream, so
 * boost::asio::async_read, async_write, async_read_until and Boost.Beast's
 * HTTP operations work on it.
 *
 * Asynchronous sends and receives are IORING_OP_SEND / IORING_OP_RECV for one
 * buffer and IORING_OP_SENDMSG / IORING_OP_RECVMSG for a sequence on io_uring
 * (send / recv / sendmsg / recvmsg on readiness, on epoll and kqueue) (at most 16
 * buffers per operation: read_some and write_some transfer from the first 16).
 * A zero-length transfer completes at once (posted) with 0 bytes; a
 * zero-byte receive into a non-empty buffer is boost::asio::error::eof. Sends
 * never raise SIGPIPE (MSG_NOSIGNAL).
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Protocol, typename Executor = boost::asio::any_io_executor>
class basic_stream_socket : public basic_socket<Protocol, Executor>
{
  using base_type = basic_socket<Protocol, Executor>;
  using socket_base = boost::asio::socket_base;

public:
  using executor_type = Executor;

  /// Rebinds the socket type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_stream_socket<Protocol, Executor1>;
  };

  using native_handle_type = typename base_type::native_handle_type;
  using protocol_type = Protocol;
  using endpoint_type = typename Protocol::endpoint;

  /// Constructs a socket without opening it.
  explicit basic_stream_socket(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_stream_socket(ExecutionContext& context) : base_type(context)
  {
  }

  /// Constructs and opens a socket.
  basic_stream_socket(const executor_type& ex, const protocol_type& protocol)
    : base_type(ex, protocol)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_stream_socket(ExecutionContext& context, const protocol_type& protocol)
    : base_type(context, protocol)
  {
  }

  /// Constructs a socket, opens it and binds it to endpoint.
  basic_stream_socket(const executor_type& ex, const endpoint_type& endpoint)
    : base_type(ex, endpoint)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_stream_socket(ExecutionContext& context, const endpoint_type& endpoint)
    : base_type(context, endpoint)
  {
  }

  /// Constructs a socket that takes ownership of native_socket.
  basic_stream_socket(const executor_type& ex, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : base_type(ex, protocol, native_socket)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_stream_socket(ExecutionContext& context, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : base_type(context, protocol, native_socket)
  {
  }

  basic_stream_socket(basic_stream_socket&& other) noexcept = default;
  basic_stream_socket& operator=(basic_stream_socket&& other) = default;

  /// Move-constructs from a socket of another protocol or executor type.
  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_stream_socket(basic_stream_socket<Protocol1, Executor1>&& other)
    : base_type(std::move(other))
  {
  }

  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_stream_socket& operator=(basic_stream_socket<Protocol1, Executor1>&& other)
  {
    base_type::operator=(std::move(other));
    return *this;
  }

  /// Destroys the socket; pending operations complete with operation_aborted.
  ~basic_stream_socket() = default;

  /// Sends data, blocking until some has been sent.
  template <typename ConstBufferSequence>
  std::size_t send(const ConstBufferSequence& buffers)
  {
    return send(buffers, 0);
  }

  template <typename ConstBufferSequence>
  std::size_t send(const ConstBufferSequence& buffers, socket_base::message_flags flags)
  {
    boost::system::error_code ec;
    std::size_t n = send(buffers, flags, ec);
    boost::asio::detail::throw_error(ec, "send");
    return n;
  }

  template <typename ConstBufferSequence>
  std::size_t send(const ConstBufferSequence& buffers, socket_base::message_flags flags,
      boost::system::error_code& ec)
  {
    boost::asio::detail::buffer_sequence_adapter<boost::asio::const_buffer,
        ConstBufferSequence> bufs(buffers);
    return boost::asio::detail::socket_ops::sync_send(this->fd(), this->flags(),
        bufs.buffers(), bufs.count(), flags, bufs.all_empty(), ec);
  }

  /// Starts an asynchronous send.
  /**
   * @param buffers The data (the memory must stay valid until the handler
   * is called).
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   * The send may be partial; use boost::asio::async_write to send it all.
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send(const ConstBufferSequence& buffers,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_send(this), token, buffers, socket_base::message_flags(0));
  }

  /// Starts an asynchronous send with flags (MSG_NOSIGNAL is always added).
  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send(const ConstBufferSequence& buffers, socket_base::message_flags flags,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_send(this), token, buffers, flags);
  }

  /// Receives data, blocking until some is available.
  template <typename MutableBufferSequence>
  std::size_t receive(const MutableBufferSequence& buffers)
  {
    return receive(buffers, 0);
  }

  template <typename MutableBufferSequence>
  std::size_t receive(const MutableBufferSequence& buffers, socket_base::message_flags flags)
  {
    boost::system::error_code ec;
    std::size_t n = receive(buffers, flags, ec);
    boost::asio::detail::throw_error(ec, "receive");
    return n;
  }

  template <typename MutableBufferSequence>
  std::size_t receive(const MutableBufferSequence& buffers, socket_base::message_flags flags,
      boost::system::error_code& ec)
  {
    boost::asio::detail::buffer_sequence_adapter<boost::asio::mutable_buffer,
        MutableBufferSequence> bufs(buffers);
    return boost::asio::detail::socket_ops::sync_recv(this->fd(), this->flags(),
        bufs.buffers(), bufs.count(), flags, bufs.all_empty(), ec);
  }

  /// Starts an asynchronous receive.
  /**
   * @param buffers Where to receive (must stay valid until the handler is
   * called).
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   * The end of the stream is boost::asio::error::eof.
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive(const MutableBufferSequence& buffers,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_receive(this), token, buffers, socket_base::message_flags(0));
  }

  /// Starts an asynchronous receive with flags (MSG_PEEK, MSG_OOB, ...).
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive(const MutableBufferSequence& buffers, socket_base::message_flags flags,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_receive(this), token, buffers, flags);
  }

  /// Starts an asynchronous receive into a buffer of pool, chosen when data
  /// arrives.
  /**
   * The handler gets the bytes received (at most pool.buffer_size()) as a
   * provided_buffer, which returns to the pool when destroyed or released.
   * Where the kernel has buffer rings, a receive waiting for data holds no
   * buffer; elsewhere it takes one from the pool when submitted (see
   * provided_buffer_pool). The pool must outlive the operation.
   *
   * @param pool The buffers to receive into.
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, zokio::provided_buffer) @endcode
   * The buffer is empty unless the error code is success. End of stream is
   * boost::asio::error::eof; no free buffer in the pool is
   * boost::asio::error::no_buffer_space (the data stays in the socket).
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive_provided(provided_buffer_pool& pool,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken,
        void(boost::system::error_code, provided_buffer)>(
        initiate_async_receive_provided(this), token, &pool, socket_base::message_flags(0));
  }

  /// As above, with flags (MSG_PEEK is not meaningful here).
  template <typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive_provided(provided_buffer_pool& pool, socket_base::message_flags flags,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken,
        void(boost::system::error_code, provided_buffer)>(
        initiate_async_receive_provided(this), token, &pool, flags);
  }

  /// Receives into buffers of pool until an error, calling handler for every
  /// chunk of data as it arrives.
  /**
   * A receive that stays armed: the handler is stored once, for the whole
   * loop, and called as
   * @code void handler(boost::system::error_code ec, zokio::provided_buffer b) @endcode
   * once per chunk (ec success, b holding the bytes), in the order received,
   * and then once more with the error that ends the loop (b empty):
   * boost::asio::error::eof at the end of the stream,
   * boost::asio::error::operation_aborted after cancel(), close() or a
   * cancellation through the handler's slot, already_started if the socket
   * runs a loop already, or the socket's error. When every buffer of the
   * pool is held, the loop waits (the data stays in the socket) and goes on
   * as buffers are released: it does not end for want of buffers. Nothing
   * received is lost: chunks received before a cancellation are delivered
   * before it.
   *
   * The handler must be callable more than once (an lvalue call per chunk;
   * the last call is made on an rvalue, after the loop's memory has been
   * freed, so that handler may start a new loop). It is never called inside
   * this function, never twice at once, and never for the next chunk before
   * it has returned from the previous one; each call is made as if posted
   * (on a thread that runs the context, or through the handler's associated
   * executor). Its associated allocator provides the loop's memory. While the
   * loop runs, it counts as outstanding work of the context.
   *
   * Where the kernel has multishot receive (6.0) and the pool is a kernel
   * buffer ring, the loop is one multishot request: a connection waiting
   * for data holds no buffer and no operation object, and chunks cost no
   * submission. Elsewhere it makes one receive at a time (built in the
   * loop: no allocation per chunk). The pool must outlive the loop.
   * Completion tokens other than a handler do not apply: a token completes
   * once (use async_receive_provided for one chunk at a time).
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation: the loop ends with
   * operation_aborted.
   */
  template <typename ReceiveHandler>
    requires std::is_invocable_v<std::decay_t<ReceiveHandler>&, boost::system::error_code,
        provided_buffer>
  void async_receive_each(provided_buffer_pool& pool, ReceiveHandler&& handler)
  {
    async_receive_each(pool, socket_base::message_flags(0),
        std::forward<ReceiveHandler>(handler));
  }

  /// As above, with flags (MSG_PEEK is not meaningful here).
  template <typename ReceiveHandler>
    requires std::is_invocable_v<std::decay_t<ReceiveHandler>&, boost::system::error_code,
        provided_buffer>
  void async_receive_each(provided_buffer_pool& pool, socket_base::message_flags flags,
      ReceiveHandler&& handler)
  {
    std::decay_t<ReceiveHandler> h(std::forward<ReceiveHandler>(handler));
    this->service_->async_receive_each(this->impl_.state_, pool, flags, h, this->executor_);
  }

  /// Writes some data, blocking until some has been written.
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers)
  {
    return send(buffers, 0);
  }

  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec)
  {
    return send(buffers, 0, ec);
  }

  /// Starts an asynchronous write of some data (may be partial).
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_send(this), token, buffers, socket_base::message_flags(0));
  }

  /// Reads some data, blocking until some is available.
  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers)
  {
    return receive(buffers, 0);
  }

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec)
  {
    return receive(buffers, 0, ec);
  }

  /// Starts an asynchronous read of some data.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   * The end of the stream is boost::asio::error::eof.
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        initiate_async_receive(this), token, buffers, socket_base::message_flags(0));
  }

private:
  class initiate_async_send
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_send(basic_stream_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename WriteHandler, typename ConstBufferSequence>
    void operator()(WriteHandler&& handler, const ConstBufferSequence& buffers,
        socket_base::message_flags flags) const
    {
      std::decay_t<WriteHandler> h(std::forward<WriteHandler>(handler));
      self_->service_->template async_send<detail::stream_max_buffers>(
          self_->impl_.state_, true, buffers, flags, h, self_->executor_);
    }

  private:
    basic_stream_socket* self_;
  };

  class initiate_async_receive_provided
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_receive_provided(basic_stream_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename ReadHandler>
    void operator()(ReadHandler&& handler, provided_buffer_pool* pool,
        socket_base::message_flags flags) const
    {
      std::decay_t<ReadHandler> h(std::forward<ReadHandler>(handler));
      self_->service_->async_receive_provided(self_->impl_.state_, *pool, flags, h,
          self_->executor_);
    }

  private:
    basic_stream_socket* self_;
  };

  class initiate_async_receive
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_receive(basic_stream_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename ReadHandler, typename MutableBufferSequence>
    void operator()(ReadHandler&& handler, const MutableBufferSequence& buffers,
        socket_base::message_flags flags) const
    {
      std::decay_t<ReadHandler> h(std::forward<ReadHandler>(handler));
      self_->service_->template async_receive<detail::stream_max_buffers>(
          self_->impl_.state_, true, buffers, flags, h, self_->executor_);
    }

  private:
    basic_stream_socket* self_;
  };
};

} // namespace zokio

#endif // ZOKIO_BASIC_STREAM_SOCKET_HPP
