// zokio/basic_socket.hpp: the base of zokio's socket objects, with the
// interface of boost::asio::basic_socket.
#ifndef ZOKIO_BASIC_SOCKET_HPP
#define ZOKIO_BASIC_SOCKET_HPP

#include <zokio/detail/io_scheduler.hpp>
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/socket_base.hpp>

#include <type_traits>
#include <utility>

namespace zokio {

/// Provides socket functionality on a zokio context.
/**
 * The interface of boost::asio::basic_socket: opening, binding, connecting,
 * options, endpoints, shutdown, readiness waits. Asynchronous operations are
 * io_uring requests submitted on the ring of the thread that starts them
 * (see zokio::io_context); their handlers run as if posted, with the
 * handler's associated executor.
 *
 * The executor must belong to a zokio context: a zokio executor, a strand
 * over one, or an any_io_executor holding either. Anything else makes the
 * constructor throw boost::system::system_error with
 * zokio::error::not_a_zokio_executor.
 *
 * Closing or destroying a socket completes its pending operations with
 * boost::asio::error::operation_aborted. The descriptor itself is closed
 * once the kernel has returned every operation on it, so its number is
 * never reused while a request could still name it.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe, except that cancel() may be called from any
 * thread while operations are pending, and operations may complete on any
 * thread that runs the context while another starts the next one.
 */
template <typename Protocol, typename Executor = boost::asio::any_io_executor>
class basic_socket : public boost::asio::socket_base
{
protected:
  using service_type = detail::socket_service;
  using implementation_type = service_type::implementation_type<Protocol>;

public:
  /// The type of the executor associated with the object.
  using executor_type = Executor;

  /// Rebinds the socket type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_socket<Protocol, Executor1>;
  };

  /// The native representation of a socket.
  using native_handle_type = int;

  /// The protocol type.
  using protocol_type = Protocol;

  /// The endpoint type.
  using endpoint_type = typename Protocol::endpoint;

  /// A basic_socket is always the lowest layer.
  using lowest_layer_type = basic_socket;

  /// Constructs a socket without opening it.
  explicit basic_socket(const executor_type& ex)
    : service_(&service_for(ex)), executor_(ex)
  {
  }

  /// Constructs a socket on an execution context, without opening it.
  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_socket(ExecutionContext& context)
    : basic_socket(executor_type(context.get_executor()))
  {
  }

  /// Constructs and opens a socket.
  basic_socket(const executor_type& ex, const protocol_type& protocol)
    : basic_socket(ex)
  {
    open(protocol);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket(ExecutionContext& context, const protocol_type& protocol)
    : basic_socket(executor_type(context.get_executor()), protocol)
  {
  }

  /// Constructs a socket, opens it and binds it to endpoint.
  basic_socket(const executor_type& ex, const endpoint_type& endpoint)
    : basic_socket(ex)
  {
    open(endpoint.protocol());
    bind(endpoint);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket(ExecutionContext& context, const endpoint_type& endpoint)
    : basic_socket(executor_type(context.get_executor()), endpoint)
  {
  }

  /// Constructs a socket that takes ownership of native_socket.
  basic_socket(const executor_type& ex, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : basic_socket(ex)
  {
    assign(protocol, native_socket);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_socket(ExecutionContext& context, const protocol_type& protocol,
      const native_handle_type& native_socket)
    : basic_socket(executor_type(context.get_executor()), protocol, native_socket)
  {
  }

  /// Move-constructs a socket: pending operations follow it. The moved-from
  /// object is closed and keeps its executor.
  basic_socket(basic_socket&& other) noexcept
    : service_(other.service_), impl_(other.impl_), executor_(other.executor_)
  {
    other.impl_.state_ = nullptr;
  }

  /// Move-assigns a socket; this socket is closed first.
  basic_socket& operator=(basic_socket&& other)
  {
    if (this != &other)
    {
      boost::system::error_code ignored;
      service_->close(impl_.state_, ignored, true);
      service_ = other.service_;
      impl_ = other.impl_;
      executor_ = other.executor_;
      other.impl_.state_ = nullptr;
    }
    return *this;
  }

  /// Move-constructs from a socket of another protocol or executor type.
  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_socket(basic_socket<Protocol1, Executor1>&& other)
    : service_(other.service_), executor_(other.executor_)
  {
    impl_.state_ = other.impl_.state_;
    impl_.protocol_ = other.impl_.protocol_;
    other.impl_.state_ = nullptr;
  }

  template <typename Protocol1, typename Executor1>
    requires(std::is_convertible_v<Protocol1, Protocol>
        && std::is_constructible_v<Executor, const Executor1&>)
  basic_socket& operator=(basic_socket<Protocol1, Executor1>&& other)
  {
    boost::system::error_code ignored;
    service_->close(impl_.state_, ignored, true);
    service_ = other.service_;
    impl_.state_ = other.impl_.state_;
    impl_.protocol_ = other.impl_.protocol_;
    executor_ = Executor(other.executor_);
    other.impl_.state_ = nullptr;
    return *this;
  }

  basic_socket(const basic_socket&) = delete;
  basic_socket& operator=(const basic_socket&) = delete;

  /// The executor associated with the object.
  executor_type get_executor() noexcept { return executor_; }

  /// This object (a basic_socket is the lowest layer).
  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }

  /// Opens the socket with the given protocol.
  void open(const protocol_type& protocol = protocol_type())
  {
    boost::system::error_code ec;
    open(protocol, ec);
    boost::asio::detail::throw_error(ec, "open");
  }

  void open(const protocol_type& protocol, boost::system::error_code& ec)
  {
    if (impl_.state_)
    {
      ec = boost::asio::error::already_open;
      return;
    }
    impl_.state_ = service_->open(protocol.family(), protocol.type(), protocol.protocol(), ec);
    if (impl_.state_)
      impl_.protocol_ = protocol;
  }

  /// Takes ownership of an existing native socket.
  void assign(const protocol_type& protocol, const native_handle_type& native_socket)
  {
    boost::system::error_code ec;
    assign(protocol, native_socket, ec);
    boost::asio::detail::throw_error(ec, "assign");
  }

  void assign(const protocol_type& protocol, const native_handle_type& native_socket,
      boost::system::error_code& ec)
  {
    if (impl_.state_)
    {
      ec = boost::asio::error::already_open;
      return;
    }
    impl_.state_ = service_->assign(native_socket, protocol.type() == SOCK_STREAM, ec);
    if (impl_.state_)
      impl_.protocol_ = protocol;
  }

  /// Whether the socket is open.
  bool is_open() const noexcept { return impl_.state_ != nullptr; }

  /// Closes the socket. Pending operations complete with operation_aborted;
  /// the descriptor is closed once the kernel has returned them.
  void close()
  {
    boost::system::error_code ec;
    close(ec);
    boost::asio::detail::throw_error(ec, "close");
  }

  void close(boost::system::error_code& ec) { service_->close(impl_.state_, ec); }

  /// Releases ownership of the native socket. Pending operations complete
  /// with operation_aborted.
  native_handle_type release()
  {
    boost::system::error_code ec;
    native_handle_type s = release(ec);
    boost::asio::detail::throw_error(ec, "release");
    return s;
  }

  native_handle_type release(boost::system::error_code& ec)
  {
    return service_->release(impl_.state_, ec);
  }

  /// The native socket (-1 when closed).
  native_handle_type native_handle() noexcept { return fd(); }

  /// Cancels every pending asynchronous operation: each completes with
  /// operation_aborted (unless it had already finished). Any thread.
  void cancel()
  {
    boost::system::error_code ec;
    cancel(ec);
    boost::asio::detail::throw_error(ec, "cancel");
  }

  void cancel(boost::system::error_code& ec)
  {
    if (!impl_.state_)
    {
      ec = boost::asio::error::bad_descriptor;
      return;
    }
    service_->cancel(impl_.state_);
    ec = boost::system::error_code();
  }

  /// Whether the socket is at the out-of-band data mark.
  bool at_mark() const
  {
    boost::system::error_code ec;
    bool b = at_mark(ec);
    boost::asio::detail::throw_error(ec, "at_mark");
    return b;
  }

  bool at_mark(boost::system::error_code& ec) const
  {
    return boost::asio::detail::socket_ops::sockatmark(fd(), ec);
  }

  /// The number of bytes that may be read without blocking.
  std::size_t available() const
  {
    boost::system::error_code ec;
    std::size_t n = available(ec);
    boost::asio::detail::throw_error(ec, "available");
    return n;
  }

  std::size_t available(boost::system::error_code& ec) const
  {
    return boost::asio::detail::socket_ops::available(fd(), ec);
  }

  /// Binds the socket to a local endpoint.
  void bind(const endpoint_type& endpoint)
  {
    boost::system::error_code ec;
    bind(endpoint, ec);
    boost::asio::detail::throw_error(ec, "bind");
  }

  void bind(const endpoint_type& endpoint, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::bind(fd(), endpoint.data(), endpoint.size(), ec);
  }

  /// Connects the socket to a peer, blocking; opens it first if needed.
  void connect(const endpoint_type& peer_endpoint)
  {
    boost::system::error_code ec;
    connect(peer_endpoint, ec);
    boost::asio::detail::throw_error(ec, "connect");
  }

  void connect(const endpoint_type& peer_endpoint, boost::system::error_code& ec)
  {
    if (!is_open())
    {
      open(peer_endpoint.protocol(), ec);
      if (ec)
        return;
    }
    boost::asio::detail::socket_ops::sync_connect(
        fd(), peer_endpoint.data(), peer_endpoint.size(), ec);
  }

  /// Starts an asynchronous connect; opens the socket first if needed.
  /**
   * @param peer_endpoint The remote endpoint (copied).
   * @param token The completion token, with signature
   * @code void(boost::system::error_code) @endcode
   * Connection refused, unreachable or timed out are reported with the
   * system's error (boost::asio::error::connection_refused, ...).
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation (IORING_OP_ASYNC_CANCEL
   * on io_uring; on epoll and kqueue the operation leaves its wait queue).
   */
  template <typename ConnectToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(const endpoint_type& peer_endpoint,
      ConnectToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    boost::system::error_code open_ec;
    if (!is_open())
      open(peer_endpoint.protocol(), open_ec);
    return boost::asio::async_initiate<ConnectToken, void(boost::system::error_code)>(
        initiate_async_connect(this), token, peer_endpoint, open_ec);
  }

  /// Sets a socket option (Asio's option types: reuse_address, no_delay, ...).
  template <typename SettableSocketOption>
  void set_option(const SettableSocketOption& option)
  {
    boost::system::error_code ec;
    set_option(option, ec);
    boost::asio::detail::throw_error(ec, "set_option");
  }

  template <typename SettableSocketOption>
  void set_option(const SettableSocketOption& option, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::setsockopt(fd(), flags(),
        option.level(impl_.protocol_), option.name(impl_.protocol_),
        option.data(impl_.protocol_), option.size(impl_.protocol_), ec);
  }

  /// Gets a socket option.
  template <typename GettableSocketOption>
  void get_option(GettableSocketOption& option) const
  {
    boost::system::error_code ec;
    get_option(option, ec);
    boost::asio::detail::throw_error(ec, "get_option");
  }

  template <typename GettableSocketOption>
  void get_option(GettableSocketOption& option, boost::system::error_code& ec) const
  {
    std::size_t size = option.size(impl_.protocol_);
    boost::asio::detail::socket_ops::getsockopt(fd(), impl_.state_ ? impl_.state_->flags_ : 0,
        option.level(impl_.protocol_), option.name(impl_.protocol_),
        option.data(impl_.protocol_), &size, ec);
    if (!ec)
      option.resize(impl_.protocol_, size);
  }

  /// Performs an IO control command on the socket.
  template <typename IoControlCommand>
  void io_control(IoControlCommand& command)
  {
    boost::system::error_code ec;
    io_control(command, ec);
    boost::asio::detail::throw_error(ec, "io_control");
  }

  template <typename IoControlCommand>
  void io_control(IoControlCommand& command, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::ioctl(fd(), flags(), command.name(),
        static_cast<boost::asio::detail::ioctl_arg_type*>(command.data()), ec);
  }

  /// Whether synchronous operations fail with would_block instead of
  /// blocking (asynchronous operations are not affected).
  bool non_blocking() const
  {
    return impl_.state_
      && (impl_.state_->flags_ & boost::asio::detail::socket_ops::user_set_non_blocking);
  }

  void non_blocking(bool mode)
  {
    boost::system::error_code ec;
    non_blocking(mode, ec);
    boost::asio::detail::throw_error(ec, "non_blocking");
  }

  void non_blocking(bool mode, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::set_user_non_blocking(fd(), flags(), mode, ec);
  }

  /// The non-blocking mode of the native socket.
  bool native_non_blocking() const
  {
    return impl_.state_
      && (impl_.state_->flags_ & boost::asio::detail::socket_ops::internal_non_blocking);
  }

  void native_non_blocking(bool mode)
  {
    boost::system::error_code ec;
    native_non_blocking(mode, ec);
    boost::asio::detail::throw_error(ec, "native_non_blocking");
  }

  void native_non_blocking(bool mode, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::set_internal_non_blocking(fd(), flags(), mode, ec);
  }

  /// The locally bound endpoint.
  endpoint_type local_endpoint() const
  {
    boost::system::error_code ec;
    endpoint_type ep = local_endpoint(ec);
    boost::asio::detail::throw_error(ec, "local_endpoint");
    return ep;
  }

  endpoint_type local_endpoint(boost::system::error_code& ec) const
  {
    endpoint_type endpoint;
    std::size_t addr_len = endpoint.capacity();
    if (boost::asio::detail::socket_ops::getsockname(fd(), endpoint.data(), &addr_len, ec))
      return endpoint_type();
    endpoint.resize(addr_len);
    return endpoint;
  }

  /// The remote endpoint of a connected socket.
  endpoint_type remote_endpoint() const
  {
    boost::system::error_code ec;
    endpoint_type ep = remote_endpoint(ec);
    boost::asio::detail::throw_error(ec, "remote_endpoint");
    return ep;
  }

  endpoint_type remote_endpoint(boost::system::error_code& ec) const
  {
    endpoint_type endpoint;
    std::size_t addr_len = endpoint.capacity();
    if (boost::asio::detail::socket_ops::getpeername(fd(), endpoint.data(), &addr_len, false, ec))
      return endpoint_type();
    endpoint.resize(addr_len);
    return endpoint;
  }

  /// Disables sends, receives or both.
  void shutdown(shutdown_type what)
  {
    boost::system::error_code ec;
    shutdown(what, ec);
    boost::asio::detail::throw_error(ec, "shutdown");
  }

  void shutdown(shutdown_type what, boost::system::error_code& ec)
  {
    boost::asio::detail::socket_ops::shutdown(fd(), what, ec);
  }

  /// Blocks until the socket is ready to read, to write, or has an error.
  void wait(wait_type w)
  {
    boost::system::error_code ec;
    wait(w, ec);
    boost::asio::detail::throw_error(ec, "wait");
  }

  void wait(wait_type w, boost::system::error_code& ec)
  {
    namespace socket_ops = boost::asio::detail::socket_ops;
    switch (w)
    {
    case wait_read:
      socket_ops::poll_read(fd(), 0, -1, ec);
      break;
    case wait_write:
      socket_ops::poll_write(fd(), 0, -1, ec);
      break;
    case wait_error:
      socket_ops::poll_error(fd(), 0, -1, ec);
      break;
    default:
      ec = boost::asio::error::invalid_argument;
      break;
    }
  }

  /// Waits asynchronously until the socket is ready to read, ready to write,
  /// or has an error condition (IORING_OP_POLL_ADD on io_uring; a readiness
  /// wait on epoll and kqueue).
  /**
   * @param w wait_read, wait_write or wait_error.
   * @param token The completion token, with signature
   * @code void(boost::system::error_code) @endcode
   *
   * @par Per-Operation Cancellation
   * Supports terminal, partial and total cancellation.
   */
  template <typename WaitToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(wait_type w,
      WaitToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WaitToken, void(boost::system::error_code)>(
        initiate_async_wait(this), token, w);
  }

protected:
  /// Closes the socket; pending operations complete with operation_aborted.
  ~basic_socket()
  {
    boost::system::error_code ignored;
    service_->close(impl_.state_, ignored, true);
  }

  // The descriptor, or -1 when closed.
  int fd() const noexcept { return impl_.state_ ? impl_.state_->fd_ : -1; }

  // Asio's state bits for socket_ops calls that update them. A closed
  // socket gets a scratch copy: those calls fail with bad_descriptor before
  // touching it.
  boost::asio::detail::socket_ops::state_type& flags() noexcept
  {
    thread_local boost::asio::detail::socket_ops::state_type closed_flags;
    closed_flags = 0;
    return impl_.state_ ? impl_.state_->flags_ : closed_flags;
  }

  static service_type& service_for(const executor_type& ex)
  {
    detail::scheduler& s = detail::io_scheduler_or_throw(ex, "zokio::basic_socket");
    return boost::asio::use_service<service_type>(s.context());
  }

  template <typename, typename> friend class basic_socket;

  service_type* service_;
  implementation_type impl_;
  Executor executor_;

private:
  class initiate_async_connect
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_connect(basic_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename ConnectHandler>
    void operator()(ConnectHandler&& handler, const endpoint_type& peer_endpoint,
        const boost::system::error_code& open_ec) const
    {
      std::decay_t<ConnectHandler> h(std::forward<ConnectHandler>(handler));
      self_->service_->async_connect(self_->impl_.state_, peer_endpoint, open_ec.value(), h,
          self_->executor_);
    }

  private:
    basic_socket* self_;
  };

  class initiate_async_wait
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_wait(basic_socket* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename WaitHandler>
    void operator()(WaitHandler&& handler, wait_type w) const
    {
      std::decay_t<WaitHandler> h(std::forward<WaitHandler>(handler));
      self_->service_->async_wait(self_->impl_.state_, w, h, self_->executor_);
    }

  private:
    basic_socket* self_;
  };
};

} // namespace zokio

#endif // ZOKIO_BASIC_SOCKET_HPP
