// zokio/basic_writable_pipe.hpp: the write end of a pipe on a zokio context,
// with the interface of boost::asio::basic_writable_pipe.
#ifndef ZOKIO_BASIC_WRITABLE_PIPE_HPP
#define ZOKIO_BASIC_WRITABLE_PIPE_HPP

#include <zokio/posix/basic_stream_descriptor.hpp>

namespace zokio {

/// The write end of a pipe (zokio::connect_pipe makes both ends).
/**
 * Writes: write_some and async_write_some; a write after the read end has
 * closed completes with boost::asio::error::broken_pipe (never SIGPIPE).
 * The operations are those of zokio::posix::basic_stream_descriptor (a
 * pipe is one): any completion token, per-operation cancellation
 * (terminal, partial, total), cancel() from any thread.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_writable_pipe : private posix::basic_stream_descriptor<Executor>
{
  using base_type = posix::basic_stream_descriptor<Executor>;

public:
  using executor_type = Executor;
  using native_handle_type = int;
  using lowest_layer_type = basic_writable_pipe;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_writable_pipe<Executor1>;
  };

  explicit basic_writable_pipe(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_writable_pipe(ExecutionContext& context) : base_type(context)
  {
  }

  /// Takes ownership of native_pipe.
  basic_writable_pipe(const executor_type& ex, const native_handle_type& native_pipe)
    : base_type(ex, native_pipe)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_writable_pipe(ExecutionContext& context, const native_handle_type& native_pipe)
    : base_type(context, native_pipe)
  {
  }

  basic_writable_pipe(basic_writable_pipe&& other) noexcept = default;
  basic_writable_pipe& operator=(basic_writable_pipe&& other) = default;

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_writable_pipe(basic_writable_pipe<Executor1>&& other)
    : base_type(std::move(static_cast<posix::basic_stream_descriptor<Executor1>&>(other)))
  {
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_writable_pipe& operator=(basic_writable_pipe<Executor1>&& other)
  {
    base_type::operator=(std::move(static_cast<posix::basic_stream_descriptor<Executor1>&>(other)));
    return *this;
  }

  ~basic_writable_pipe() = default;

  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }

  using base_type::assign;
  using base_type::cancel;
  using base_type::close;
  using base_type::get_executor;
  using base_type::is_open;
  using base_type::native_handle;
  using base_type::release;
  using base_type::write_some;
  using base_type::async_write_some;

private:
  template <typename> friend class basic_writable_pipe;
};

} // namespace zokio

#endif // ZOKIO_BASIC_WRITABLE_PIPE_HPP
