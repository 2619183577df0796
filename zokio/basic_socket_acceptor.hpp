// zokio/basic_socket_acceptor.hpp: accepting new socket connections on a
// zokio context, with the interface of boost::asio::basic_socket_acceptor.
#ifndef ZOKIO_BASIC_SOCKET_ACCEPTOR_HPP
#define ZOKIO_BASIC_SOCKET_ACCEPTOR_HPP

#include <zokio/basic_socket.hpp>
#include <zokio/basic_stream_socket.hpp>

#include <unistd.h>

namespace zokio {

/// Provides the ability to accept new connections on a zokio context.
/**
 * The interface of boost::asio::basic_socket_acceptor. async_accept is
 * IORING_OP_ACCEPT on io_uring (multishot where the kernel has it), accept on
 * readiness on epoll and kqueue; accepted descriptors are close-on-exec. When the process
 * runs out of descriptors an accept completes with
 * boost::asio::error::no_descriptors (EMFILE) or ENFILE and the connection
 * stays in the listen backlog, so accepting again once descriptors are free
 * succeeds.
 *
 * The moving forms of accept give a zokio::basic_stream_socket<Protocol, ...>.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Protocol, typename Executor = boost::asio::any_io_executor>
class basic_socket_acceptor : private basic_socket<Protocol, Executor>
{
  using base_type = basic_socket<Protocol, Executor>;
  using socket_base = boost::asio::socket_base;

public:
  using executor_type = Executor;

  /// Rebinds the acceptor type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_socket_acceptor<Protocol, Executor1>;
  };

  using native_handle_type = int;
  using protocol_type = Protocol;
  using endpoint_type = typename Protocol::endpoint;

  // The names of boost::asio::socket_base (options, wait types, limits).
  using socket_base::broadcast;
  using socket_base::bytes_readable;
  using socket_base::debug;
  using socket_base::do_not_route;
  using socket_base::enable_connection_aborted;
  using socket_base::keep_alive;
  using socket_base::linger;
  using socket_base::max_connections;
  using socket_base::max_listen_connections;
  using socket_base::message_flags;
  using socket_base::out_of_band_inline;
  using socket_base::receive_buffer_size;
  using socket_base::receive_low_watermark;
  using socket_base::reuse_address;
  using socket_base::send_buffer_size;
  using socket_base::send_low_watermark;
  using socket_base::wait_error;
  using socket_base::wait_read;
  using socket_base::wait_type;
  using socket_base::wait_write;

  /// The type of the socket the moving accept functions produce.
  template <typename Executor1 = Executor>
  using socket_type = basic_stream_socket<Protocol, Executor1>;

  /// Constructs an acceptor without opening it.
  explicit basic_socket_acceptor(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_socket_acceptor(ExecutionContext& context) : base_type(context)
  {
  }

  /// Constructs and opens an acceptor.
  basic_socket_acceptor(const executor_type& ex, const protocol_type& protocol)
    : base_type(ex, protocol)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket_acceptor(ExecutionContext& context, const protocol_type& protocol)
    : base_type(context, protocol)
  {
  }

  /// Opens an acceptor, sets reuse_address (by default), binds it to
  /// endpoint and listens.
  basic_socket_acceptor(const executor_type& ex, const endpoint_type& endpoint,
      bool reuse_addr = true)
    : base_type(ex)
  {
    open_bind_listen(endpoint, reuse_addr);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket_acceptor(ExecutionContext& context, const endpoint_type& endpoint,
      bool reuse_addr = true)
    : base_type(context)
  {
    open_bind_listen(endpoint, reuse_addr);
  }

  /// Constructs an acceptor on an existing native socket.
  basic_socket_acceptor(const executor_type& ex, const protocol_type& protocol,
      const native_handle_type& native_acceptor)
    : base_type(ex, protocol, native_acceptor)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket_acceptor(ExecutionContext& context, const protocol_type& protocol,
      const native_handle_type& native_acceptor)
    : base_type(context, protocol, native_acceptor)
  {
  }

  basic_socket_acceptor(basic_socket_acceptor&& other) noexcept = default;
  basic_socket_acceptor& operator=(basic_socket_acceptor&& other) = default;

  /// Move-constructs from an acceptor of another protocol or executor type.
  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_socket_acceptor(basic_socket_acceptor<Protocol1, Executor1>&& other)
    : base_type(static_cast<basic_socket<Protocol1, Executor1>&&>(other))
  {
  }

  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_socket_acceptor& operator=(basic_socket_acceptor<Protocol1, Executor1>&& other)
  {
    base_type::operator=(static_cast<basic_socket<Protocol1, Executor1>&&>(other));
    return *this;
  }

  /// Closes the acceptor; pending accepts complete with operation_aborted.
  ~basic_socket_acceptor() = default;

  using base_type::get_executor;
  using base_type::open;
  using base_type::assign;
  using base_type::is_open;
  using base_type::bind;
  using base_type::close;
  using base_type::release;
  using base_type::native_handle;
  using base_type::cancel;
  using base_type::set_option;
  using base_type::get_option;
  using base_type::io_control;
  using base_type::non_blocking;
  using base_type::native_non_blocking;
  using base_type::local_endpoint;
  using base_type::wait;
  using base_type::async_wait;

  /// Places the acceptor in the listening state.
  void listen(int backlog = socket_base::max_listen_connections)
  {
    boost::system::error_code ec;
    listen(backlog, ec);
    boost::asio::detail::throw_error(ec, "listen");
  }

  void listen(int backlog, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::listen(this->fd(), backlog, ec);
  }

  /// Accepts a connection into peer (which must be closed), blocking.
  template <typename Protocol1, typename Executor1>
    requires std::is_convertible_v<Protocol, Protocol1>
  void accept(basic_socket<Protocol1, Executor1>& peer)
  {
    boost::system::error_code ec;
    accept(peer, ec);
    boost::asio::detail::throw_error(ec, "accept");
  }

  template <typename Protocol1, typename Executor1>
    requires std::is_convertible_v<Protocol, Protocol1>
  void accept(basic_socket<Protocol1, Executor1>& peer, boost::system::error_code& ec)
  {
    do_accept(peer, nullptr, ec);
  }

  /// Accepts a connection into peer and reports the peer's endpoint, blocking.
  template <typename Executor1>
  void accept(basic_socket<Protocol, Executor1>& peer, endpoint_type& peer_endpoint)
  {
    boost::system::error_code ec;
    accept(peer, peer_endpoint, ec);
    boost::asio::detail::throw_error(ec, "accept");
  }

  template <typename Executor1>
  void accept(basic_socket<Protocol, Executor1>& peer, endpoint_type& peer_endpoint,
      boost::system::error_code& ec)
  {
    do_accept(peer, &peer_endpoint, ec);
  }

  /// Accepts a connection and returns the new socket, blocking.
  socket_type<> accept()
  {
    boost::system::error_code ec;
    socket_type<> peer(this->executor_);
    do_accept(peer, nullptr, ec);
    boost::asio::detail::throw_error(ec, "accept");
    return peer;
  }

  socket_type<> accept(boost::system::error_code& ec)
  {
    socket_type<> peer(this->executor_);
    do_accept(peer, nullptr, ec);
    return peer;
  }

  /// Accepts a connection and returns a new socket on ex, blocking.
  template <typename Executor1>
    requires(boost::asio::execution::is_executor<Executor1>::value
        || boost::asio::is_executor<Executor1>::value)
  socket_type<Executor1> accept(const Executor1& ex)
  {
    boost::system::error_code ec;
    socket_type<Executor1> peer(ex);
    do_accept(peer, nullptr, ec);
    boost::asio::detail::throw_error(ec, "accept");
    return peer;
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  socket_type<typename ExecutionContext::executor_type> accept(ExecutionContext& context)
  {
    return accept(context.get_executor());
  }

  /// Accepts a connection, reports the peer's endpoint and returns the new
  /// socket, blocking.
  socket_type<> accept(endpoint_type& peer_endpoint)
  {
    boost::system::error_code ec;
    socket_type<> peer(this->executor_);
    do_accept(peer, &peer_endpoint, ec);
    boost::asio::detail::throw_error(ec, "accept");
    return peer;
  }

  socket_type<> accept(endpoint_type& peer_endpoint, boost::system::error_code& ec)
  {
    socket_type<> peer(this->executor_);
    do_accept(peer, &peer_endpoint, ec);
    return peer;
  }

  /// Starts an asynchronous accept into peer (which must be closed).
  /**
   * @param peer The socket that receives the connection (it must stay valid
   * until the handler is called).
   * @param token The completion token, with signature
   * @code void(boost::system::error_code) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename Protocol1, typename Executor1,
      typename AcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires std::is_convertible_v<Protocol, Protocol1>
  auto async_accept(basic_socket<Protocol1, Executor1>& peer,
      AcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<AcceptToken, void(boost::system::error_code)>(
        initiate_async_accept(this), token, &peer, static_cast<endpoint_type*>(nullptr));
  }

  /// Starts an asynchronous accept into peer, reporting the peer's endpoint.
  template <typename Executor1,
      typename AcceptToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_accept(basic_socket<Protocol, Executor1>& peer, endpoint_type& peer_endpoint,
      AcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<AcceptToken, void(boost::system::error_code)>(
        initiate_async_accept(this), token, &peer, &peer_endpoint);
  }

  /// Starts an asynchronous accept of a new socket (on this acceptor's executor).
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, socket_type<>) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires(!std::is_convertible_v<MoveAcceptToken&, endpoint_type&>)
  auto async_accept(
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<>)>(
        initiate_async_move_accept<Executor>(this), token, this->executor_,
        static_cast<endpoint_type*>(nullptr));
  }

  /// Starts an asynchronous accept of a new socket on ex.
  template <typename Executor1,
      typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires(boost::asio::execution::is_executor<Executor1>::value
        || boost::asio::is_executor<Executor1>::value)
  auto async_accept(const Executor1& ex,
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<Executor1>)>(
        initiate_async_move_accept<Executor1>(this), token, ex,
        static_cast<endpoint_type*>(nullptr));
  }

  /// Starts an asynchronous accept of a new socket on context's executor.
  template <typename ExecutionContext,
      typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  auto async_accept(ExecutionContext& context,
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    using executor1 = typename ExecutionContext::executor_type;
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<executor1>)>(
        initiate_async_move_accept<executor1>(this), token, context.get_executor(),
        static_cast<endpoint_type*>(nullptr));
  }

  /// Starts an asynchronous accept of a new socket, reporting the peer's
  /// endpoint (which must stay valid until the handler is called).
  template <typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_accept(endpoint_type& peer_endpoint,
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<>)>(
        initiate_async_move_accept<Executor>(this), token, this->executor_, &peer_endpoint);
  }

  template <typename Executor1,
      typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires(boost::asio::execution::is_executor<Executor1>::value
        || boost::asio::is_executor<Executor1>::value)
  auto async_accept(const Executor1& ex, endpoint_type& peer_endpoint,
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<Executor1>)>(
        initiate_async_move_accept<Executor1>(this), token, ex, &peer_endpoint);
  }

  template <typename ExecutionContext,
      typename MoveAcceptToken = boost::asio::default_completion_token_t<executor_type>>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  auto async_accept(ExecutionContext& context, endpoint_type& peer_endpoint,
      MoveAcceptToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    using executor1 = typename ExecutionContext::executor_type;
    return boost::asio::async_initiate<MoveAcceptToken,
        void(boost::system::error_code, socket_type<executor1>)>(
        initiate_async_move_accept<executor1>(this), token, context.get_executor(),
        &peer_endpoint);
  }

private:
  template <typename, typename> friend class basic_socket_acceptor;

  void open_bind_listen(const endpoint_type& endpoint, bool reuse_addr)
  {
    boost::system::error_code ec;
    this->open(endpoint.protocol(), ec);
    boost::asio::detail::throw_error(ec, "open");
    if (reuse_addr)
    {
      this->set_option(socket_base::reuse_address(true), ec);
      boost::asio::detail::throw_error(ec, "set_option");
    }
    this->bind(endpoint, ec);
    boost::asio::detail::throw_error(ec, "bind");
    listen(socket_base::max_listen_connections, ec);
    boost::asio::detail::throw_error(ec, "listen");
  }

  template <typename Socket>
  void do_accept(Socket& peer, endpoint_type* peer_endpoint, boost::system::error_code& ec)
  {
    if (peer.is_open())
    {
      ec = boost::asio::error::already_open;
      return;
    }
    std::size_t addrlen = peer_endpoint ? peer_endpoint->capacity() : 0;
    int fd = boost::asio::detail::socket_ops::sync_accept(this->fd(), this->flags(),
        peer_endpoint ? peer_endpoint->data() : nullptr, peer_endpoint ? &addrlen : nullptr, ec);
    if (fd < 0)
      return;
    if (peer_endpoint)
      peer_endpoint->resize(addrlen);
    peer.assign(this->impl_.protocol_, fd, ec);
    if (ec)
      ::close(fd);
  }

  class initiate_async_accept
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_accept(basic_socket_acceptor* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename AcceptHandler, typename Socket>
    void operator()(AcceptHandler&& handler, Socket* peer, endpoint_type* peer_endpoint) const
    {
      std::decay_t<AcceptHandler> h(std::forward<AcceptHandler>(handler));
      self_->service_->async_accept(self_->impl_.state_, *peer, peer_endpoint,
          typename Socket::protocol_type(self_->impl_.protocol_), h, self_->executor_);
    }

  private:
    basic_socket_acceptor* self_;
  };

  template <typename Executor1>
  class initiate_async_move_accept
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_move_accept(basic_socket_acceptor* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename MoveAcceptHandler>
    void operator()(MoveAcceptHandler&& handler, const Executor1& peer_ex,
        endpoint_type* peer_endpoint) const
    {
      // Check now that the new socket's executor is usable (throws
      // not_a_zokio_executor otherwise), rather than in the completion.
      detail::io_scheduler_or_throw(peer_ex, "zokio::basic_socket_acceptor::async_accept");
      std::decay_t<MoveAcceptHandler> h(std::forward<MoveAcceptHandler>(handler));
      self_->service_->template async_move_accept<socket_type<Executor1>>(
          self_->impl_.state_, peer_ex, peer_endpoint, self_->impl_.protocol_, h,
          self_->executor_);
    }

  private:
    basic_socket_acceptor* self_;
  };
};

} // namespace zokio

#endif // ZOKIO_BASIC_SOCKET_ACCEPTOR_HPP
