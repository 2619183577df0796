// zokio/posix/basic_descriptor.hpp: a POSIX descriptor on a zokio context,
// with the interface of boost::asio::posix::basic_descriptor.
#ifndef ZOKIO_POSIX_BASIC_DESCRIPTOR_HPP
#define ZOKIO_POSIX_BASIC_DESCRIPTOR_HPP

#include <zokio/detail/io_scheduler.hpp>
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/descriptor_ops.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/posix/descriptor_base.hpp>
#include <boost/asio/socket_base.hpp>

#include <cstdint>
#include <type_traits>
#include <utility>

namespace zokio {
namespace posix {

/// Provides POSIX descriptor functionality on a zokio context.
/**
 * The interface of boost::asio::posix::basic_descriptor: assign, close,
 * release, cancel, io_control, the non-blocking modes and readiness waits.
 * Any descriptor that poll() can wait for works: pipes, FIFOs, terminals,
 * character devices, eventfds, timerfds, inotify descriptors, sockets. The
 * descriptor belongs to the object once assigned and is closed with it.
 *
 * Asynchronous operations are requests on the ring of the thread that starts
 * them (io_uring), or readiness waits on epoll and kqueue, where the
 * descriptor is made non-blocking on assignment as Asio's reactor makes it
 * (native_non_blocking() then says so; the synchronous calls still wait).
 * Closing or destroying the object completes its pending operations with
 * boost::asio::error::operation_aborted; the descriptor is closed once the
 * kernel has returned every operation on it.
 *
 * The executor must belong to a zokio context (else the constructor throws
 * boost::system::system_error with zokio::error::not_a_zokio_executor).
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe, except that cancel() may be called from any
 * thread while operations are pending.
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_descriptor : public boost::asio::posix::descriptor_base
{
protected:
  using service_type = detail::socket_service;

public:
  /// The type of the executor associated with the object.
  using executor_type = Executor;

  /// Rebinds the descriptor type to another executor.
  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_descriptor<Executor1>;
  };

  /// The native representation of a descriptor.
  using native_handle_type = int;

  /// A basic_descriptor is always the lowest layer.
  using lowest_layer_type = basic_descriptor;

  /// Constructs a descriptor object that holds no descriptor.
  explicit basic_descriptor(const executor_type& ex)
    : service_(&service_for(ex)), executor_(ex)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_descriptor(ExecutionContext& context)
    : basic_descriptor(executor_type(context.get_executor()))
  {
  }

  /// Constructs a descriptor object that takes ownership of native_descriptor.
  basic_descriptor(const executor_type& ex, const native_handle_type& native_descriptor)
    : basic_descriptor(ex)
  {
    assign(native_descriptor);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_descriptor(ExecutionContext& context, const native_handle_type& native_descriptor)
    : basic_descriptor(executor_type(context.get_executor()), native_descriptor)
  {
  }

  /// Move-constructs: pending operations follow the descriptor. The
  /// moved-from object holds none and keeps its executor.
  basic_descriptor(basic_descriptor&& other) noexcept
    : service_(other.service_), state_(other.state_), executor_(other.executor_)
  {
    other.state_ = nullptr;
  }

  /// Move-assigns; this object's descriptor is closed first.
  basic_descriptor& operator=(basic_descriptor&& other)
  {
    if (this != &other)
    {
      boost::system::error_code ignored;
      service_->close(state_, ignored, true);
      service_ = other.service_;
      state_ = other.state_;
      executor_ = other.executor_;
      other.state_ = nullptr;
    }
    return *this;
  }

  /// Move-constructs from a descriptor with another executor type.
  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_descriptor(basic_descriptor<Executor1>&& other)
    : service_(other.service_), state_(other.state_), executor_(other.executor_)
  {
    other.state_ = nullptr;
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_descriptor& operator=(basic_descriptor<Executor1>&& other)
  {
    boost::system::error_code ignored;
    service_->close(state_, ignored, true);
    service_ = other.service_;
    state_ = other.state_;
    executor_ = Executor(other.executor_);
    other.state_ = nullptr;
    return *this;
  }

  basic_descriptor(const basic_descriptor&) = delete;
  basic_descriptor& operator=(const basic_descriptor&) = delete;

  /// The executor associated with the object.
  const executor_type& get_executor() noexcept { return executor_; }

  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }

  /// Takes ownership of native_descriptor (already_open if one is held).
  void assign(const native_handle_type& native_descriptor)
  {
    boost::system::error_code ec;
    assign(native_descriptor, ec);
    boost::asio::detail::throw_error(ec, "assign");
  }

  void assign(const native_handle_type& native_descriptor, boost::system::error_code& ec)
  {
    assign_with(native_descriptor, stream_hints, ec);
  }

  bool is_open() const noexcept { return state_ != nullptr; }

  /// Closes the descriptor; pending operations complete with operation_aborted.
  void close()
  {
    boost::system::error_code ec;
    close(ec);
    boost::asio::detail::throw_error(ec, "close");
  }

  void close(boost::system::error_code& ec) { service_->close(state_, ec); }

  native_handle_type native_handle() noexcept { return fd(); }

  /// Gives the descriptor up without closing it; pending operations
  /// complete with operation_aborted.
  native_handle_type release()
  {
    boost::system::error_code ignored;
    return service_->release(state_, ignored);
  }

  /// Cancels every pending operation (operation_aborted). Any thread.
  void cancel()
  {
    boost::system::error_code ec;
    cancel(ec);
    boost::asio::detail::throw_error(ec, "cancel");
  }

  void cancel(boost::system::error_code& ec)
  {
    if (!state_)
    {
      ec = boost::asio::error::bad_descriptor;
      return;
    }
    service_->cancel(state_);
    ec = boost::system::error_code();
  }

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

  /// Whether the user asked for non-blocking synchronous calls.
  bool non_blocking() const
  {
    return state_ && (state_->flags_ & boost::asio::detail::socket_ops::user_set_non_blocking);
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

  /// Whether the descriptor itself is in non-blocking mode (O_NONBLOCK as
  /// zokio or the user set it through this object).
  bool native_non_blocking() const
  {
    return state_ && (state_->flags_ & boost::asio::detail::socket_ops::internal_non_blocking);
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

  /// Blocks until the descriptor is ready to read, to write, or has an
  /// error condition.
  void wait(wait_type w)
  {
    boost::system::error_code ec;
    wait(w, ec);
    boost::asio::detail::throw_error(ec, "wait");
  }

  void wait(wait_type w, boost::system::error_code& ec)
  {
    namespace descriptor_ops = boost::asio::detail::descriptor_ops;
    switch (w)
    {
    case wait_read:
      descriptor_ops::poll_read(fd(), 0, ec);
      break;
    case wait_write:
      descriptor_ops::poll_write(fd(), 0, ec);
      break;
    case wait_error:
      descriptor_ops::poll_error(fd(), 0, ec);
      break;
    default:
      ec = boost::asio::error::invalid_argument;
      break;
    }
  }

  /// Waits asynchronously for readiness (IORING_OP_POLL_ADD on io_uring, a
  /// readiness wait on epoll and kqueue).
  /**
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
  /// Closes the descriptor; pending operations complete with operation_aborted.
  ~basic_descriptor()
  {
    boost::system::error_code ignored;
    service_->close(state_, ignored, true);
  }

  // Reads and writes of a pollable descriptor: they may wait for readiness
  // (and on io_uring poll and retry where the kernel refuses an O_NONBLOCK
  // descriptor with EAGAIN), and writes must not raise SIGPIPE.
  static constexpr std::uint8_t stream_hints = detail::io_request::stream
      | detail::io_request::poll_then_retry | detail::io_request::no_sigpipe;

  void assign_with(int native_descriptor, std::uint8_t hints, boost::system::error_code& ec)
  {
    if (state_)
    {
      ec = boost::asio::error::already_open;
      return;
    }
    if (native_descriptor < 0)
    {
      ec = boost::asio::error::bad_descriptor;
      return;
    }
    state_ = service_->assign(native_descriptor, true, ec, hints);
  }

  int fd() const noexcept { return state_ ? state_->fd_ : -1; }

  boost::asio::detail::socket_ops::state_type& flags() noexcept
  {
    thread_local boost::asio::detail::socket_ops::state_type closed_flags;
    closed_flags = 0;
    return state_ ? state_->flags_ : closed_flags;
  }

  unsigned char state_flags() const noexcept { return state_ ? state_->flags_ : 0; }

  static service_type& service_for(const executor_type& ex)
  {
    detail::scheduler& s = detail::io_scheduler_or_throw(ex, "zokio::posix::basic_descriptor");
    return boost::asio::use_service<service_type>(s.context());
  }

  // Reads (Buffer mutable_buffer) or writes (const_buffer) at an offset, -1
  // for the current position: the initiation of every transfer of the
  // descriptor types built on this one (stream descriptors, pipes, files).
  template <typename Buffer>
  class initiate_transfer
  {
  public:
    using executor_type = Executor;

    explicit initiate_transfer(basic_descriptor* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename Handler, typename BufferSequence>
    void operator()(Handler&& handler, const BufferSequence& buffers, std::int64_t offset) const
    {
      std::decay_t<Handler> h(std::forward<Handler>(handler));
      self_->service_->template async_transfer<Buffer>(
          self_->state_, offset, buffers, h, self_->executor_);
    }

  private:
    basic_descriptor* self_;
  };

  template <typename> friend class basic_descriptor;

  service_type* service_;
  detail::socket_state* state_ = nullptr;
  Executor executor_;

private:
  class initiate_async_wait
  {
  public:
    using executor_type = Executor;

    explicit initiate_async_wait(basic_descriptor* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename WaitHandler>
    void operator()(WaitHandler&& handler, wait_type w) const
    {
      std::decay_t<WaitHandler> h(std::forward<WaitHandler>(handler));
      self_->service_->async_wait(self_->state_,
          static_cast<boost::asio::socket_base::wait_type>(w), h, self_->executor_);
    }

  private:
    basic_descriptor* self_;
  };
};

} // namespace posix
} // namespace zokio

#endif // ZOKIO_POSIX_BASIC_DESCRIPTOR_HPP
