// zokio/basic_datagram_socket.hpp: a datagram-oriented socket on a zokio
// context, with the interface of boost::asio::basic_datagram_socket.
#ifndef ZOKIO_BASIC_DATAGRAM_SOCKET_HPP
#define ZOKIO_BASIC_DATAGRAM_SOCKET_HPP

#include <zokio/basic_socket.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/buffer_sequence_adapter.hpp>

namespace zokio {

/// Provides datagram-oriented socket functionality on a zokio context.
/**
 * The interface of boost::asio::basic_datagram_socket. Each send is one
 * datagram (IORING_OP_SEND for one buffer on a connected socket, otherwise
 * IORING_OP_SENDMSG, up to 64 buffers); each receive takes one datagram
 * (IORING_OP_RECV / IORING_OP_RECVMSG). A zero-length datagram is sent and
 * received like any other.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Protocol, typename Executor = boost::asio::any_io_executor>
class basic_datagram_socket : public basic_socket<Protocol, Executor>
{
  using base_type = basic_socket<Protocol, Executor>;
  using socket_base = boost::asio::socket_base;
  using signature = void(boost::system::error_code, std::size_t);

public:
  using executor_type = Executor;

  /// Rebinds the socket type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_datagram_socket<Protocol, Executor1>;
  };

  using native_handle_type = typename base_type::native_handle_type;
  using protocol_type = Protocol;
  using endpoint_type = typename Protocol::endpoint;

  /// Constructs a socket without opening it.
  explicit basic_datagram_socket(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_datagram_socket(ExecutionContext& context) : base_type(context)
  {
  }

  /// Constructs and opens a socket.
  basic_datagram_socket(const executor_type& ex, const protocol_type& protocol)
    : base_type(ex, protocol)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_datagram_socket(ExecutionContext& context, const protocol_type& protocol)
    : base_type(context, protocol)
  {
  }

  /// Constructs a socket, opens it and binds it to endpoint.
  basic_datagram_socket(const executor_type& ex, const endpoint_type& endpoint)
    : base_type(ex, endpoint)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_datagram_socket(ExecutionContext& context, const endpoint_type& endpoint)
    : base_type(context, endpoint)
  {
  }

  /// Constructs a socket that takes ownership of native_socket.
  basic_datagram_socket(const executor_type& ex, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : base_type(ex, protocol, native_socket)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_datagram_socket(ExecutionContext& context, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : base_type(context, protocol, native_socket)
  {
  }

  basic_datagram_socket(basic_datagram_socket&& other) noexcept = default;
  basic_datagram_socket& operator=(basic_datagram_socket&& other) = default;

  /// Move-constructs from a socket of another protocol or executor type.
  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_datagram_socket(basic_datagram_socket<Protocol1, Executor1>&& other)
    : base_type(std::move(other))
  {
  }

  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_datagram_socket& operator=(basic_datagram_socket<Protocol1, Executor1>&& other)
  {
    base_type::operator=(std::move(other));
    return *this;
  }

  /// Destroys the socket; pending operations complete with operation_aborted.
  ~basic_datagram_socket() = default;

  /// Sends a datagram on a connected socket, blocking.
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

  /// Starts an asynchronous send on a connected socket.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send(const ConstBufferSequence& buffers,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, signature>(
        initiate_async_send(this), token, buffers, socket_base::message_flags(0));
  }

  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send(const ConstBufferSequence& buffers, socket_base::message_flags flags,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, signature>(
        initiate_async_send(this), token, buffers, flags);
  }

  /// Sends a datagram to destination, blocking.
  template <typename ConstBufferSequence>
  std::size_t send_to(const ConstBufferSequence& buffers, const endpoint_type& destination)
  {
    return send_to(buffers, destination, 0);
  }

  template <typename ConstBufferSequence>
  std::size_t send_to(const ConstBufferSequence& buffers, const endpoint_type& destination,
      socket_base::message_flags flags)
  {
    boost::system::error_code ec;
    std::size_t n = send_to(buffers, destination, flags, ec);
    boost::asio::detail::throw_error(ec, "send_to");
    return n;
  }

  template <typename ConstBufferSequence>
  std::size_t send_to(const ConstBufferSequence& buffers, const endpoint_type& destination,
      socket_base::message_flags flags, boost::system::error_code& ec)
  {
    boost::asio::detail::buffer_sequence_adapter<boost::asio::const_buffer,
        ConstBufferSequence> bufs(buffers);
    return boost::asio::detail::socket_ops::sync_sendto(this->fd(), this->flags(),
        bufs.buffers(), bufs.count(), flags, destination.data(), destination.size(), ec);
  }

  /// Starts an asynchronous send of a datagram to destination (copied).
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send_to(const ConstBufferSequence& buffers, const endpoint_type& destination,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, signature>(
        initiate_async_send_to(this), token, buffers, destination, socket_base::message_flags(0));
  }

  template <typename ConstBufferSequence,
      typename WriteToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send_to(const ConstBufferSequence& buffers, const endpoint_type& destination,
      socket_base::message_flags flags,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, signature>(
        initiate_async_send_to(this), token, buffers, destination, flags);
  }

  /// Receives a datagram on a connected socket, blocking.
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

  /// Starts an asynchronous receive on a connected socket.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive(const MutableBufferSequence& buffers,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, signature>(
        initiate_async_receive(this), token, buffers, socket_base::message_flags(0));
  }

  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive(const MutableBufferSequence& buffers, socket_base::message_flags flags,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, signature>(
        initiate_async_receive(this), token, buffers, flags);
  }

  /// Receives a datagram and its sender's endpoint, blocking.
  template <typename MutableBufferSequence>
  std::size_t receive_from(const MutableBufferSequence& buffers, endpoint_type& sender_endpoint)
  {
    return receive_from(buffers, sender_endpoint, 0);
  }

  template <typename MutableBufferSequence>
  std::size_t receive_from(const MutableBufferSequence& buffers, endpoint_type& sender_endpoint,
      socket_base::message_flags flags)
  {
    boost::system::error_code ec;
    std::size_t n = receive_from(buffers, sender_endpoint, flags, ec);
    boost::asio::detail::throw_error(ec, "receive_from");
    return n;
  }

  template <typename MutableBufferSequence>
  std::size_t receive_from(const MutableBufferSequence& buffers, endpoint_type& sender_endpoint,
      socket_base::message_flags flags, boost::system::error_code& ec)
  {
    boost::asio::detail::buffer_sequence_adapter<boost::asio::mutable_buffer,
        MutableBufferSequence> bufs(buffers);
    std::size_t addr_len = sender_endpoint.capacity();
    std::size_t n = boost::asio::detail::socket_ops::sync_recvfrom(this->fd(), this->flags(),
        bufs.buffers(), bufs.count(), flags, sender_endpoint.data(), &addr_len, ec);
    if (!ec)
      sender_endpoint.resize(addr_len);
    return n;
  }

  /// Starts an asynchronous receive of a datagram and its sender's endpoint.
  /**
   * @param sender_endpoint Receives the sender's address; it must stay valid
   * until the handler is called.
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive_from(const MutableBufferSequence& buffers, endpoint_type& sender_endpoint,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, signature>(
        initiate_async_receive_from(this), token, buffers, &sender_endpoint,
        socket_base::message_flags(0));
  }

  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive_from(const MutableBufferSequence& buffers, endpoint_type& sender_endpoint,
      socket_base::message_flags flags,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, signature>(
        initiate_async_receive_from(this), token, buffers, &sender_endpoint, flags);
  }

private:
  class initiate_base
  {
  public:
    using executor_type = Executor;

    explicit initiate_base(basic_datagram_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

  protected:
    basic_datagram_socket* self_;
  };

  class initiate_async_send : public initiate_base
  {
  public:
    using initiate_base::initiate_base;

    template <typename WriteHandler, typename ConstBufferSequence>
    void operator()(WriteHandler&& handler, const ConstBufferSequence& buffers,
        socket_base::message_flags flags) const
    {
      std::decay_t<WriteHandler> h(std::forward<WriteHandler>(handler));
      this->self_->service_->template async_send<detail::datagram_max_buffers>(
          this->self_->impl_.state_, false, buffers, flags, h, this->self_->executor_);
    }
  };

  class initiate_async_send_to : public initiate_base
  {
  public:
    using initiate_base::initiate_base;

    template <typename WriteHandler, typename ConstBufferSequence>
    void operator()(WriteHandler&& handler, const ConstBufferSequence& buffers,
        const endpoint_type& destination, socket_base::message_flags flags) const
    {
      std::decay_t<WriteHandler> h(std::forward<WriteHandler>(handler));
      this->self_->service_->async_send_to(this->self_->impl_.state_, buffers, destination,
          flags, h, this->self_->executor_);
    }
  };

  class initiate_async_receive : public initiate_base
  {
  public:
    using initiate_base::initiate_base;

    template <typename ReadHandler, typename MutableBufferSequence>
    void operator()(ReadHandler&& handler, const MutableBufferSequence& buffers,
        socket_base::message_flags flags) const
    {
      std::decay_t<ReadHandler> h(std::forward<ReadHandler>(handler));
      this->self_->service_->template async_receive<detail::datagram_max_buffers>(
          this->self_->impl_.state_, false, buffers, flags, h, this->self_->executor_);
    }
  };

  class initiate_async_receive_from : public initiate_base
  {
  public:
    using initiate_base::initiate_base;

    template <typename ReadHandler, typename MutableBufferSequence>
    void operator()(ReadHandler&& handler, const MutableBufferSequence& buffers,
        endpoint_type* sender_endpoint, socket_base::message_flags flags) const
    {
      std::decay_t<ReadHandler> h(std::forward<ReadHandler>(handler));
      this->self_->service_->async_receive_from(this->self_->impl_.state_, buffers,
          *sender_endpoint, flags, h, this->self_->executor_);
    }
  };
};

} // namespace zokio

#endif // ZOKIO_BASIC_DATAGRAM_SOCKET_HPP
