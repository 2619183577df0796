// zokio/posix/basic_stream_descriptor.hpp: a stream-oriented POSIX
// descriptor (pipe, FIFO, terminal, character device...) on a zokio
// context, with the interface of boost::asio::posix::basic_stream_descriptor.
#ifndef ZOKIO_POSIX_BASIC_STREAM_DESCRIPTOR_HPP
#define ZOKIO_POSIX_BASIC_STREAM_DESCRIPTOR_HPP

#include <zokio/detail/socket/descriptor_io.hpp>
#include <zokio/posix/basic_descriptor.hpp>

#include <boost/asio/buffer.hpp>

namespace zokio {
namespace posix {

/// Reads and writes on a stream-oriented descriptor.
/**
 * A model of Asio's AsyncReadStream and AsyncWriteStream: boost::asio's
 * composed async_read, async_write, async_read_until work on it.
 * read_some and write_some move at most the first 16 buffers of a sequence
 * (IORING_OP_READ / WRITE for one buffer, READV / WRITEV for several, on
 * io_uring). A zero-length transfer completes at once (posted) with 0
 * bytes; a read of zero bytes into a non-empty buffer is
 * boost::asio::error::eof (the writer has closed). A write to a pipe whose
 * reader has gone completes with boost::asio::error::broken_pipe and never
 * raises SIGPIPE.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_stream_descriptor : public basic_descriptor<Executor>
{
  using base_type = basic_descriptor<Executor>;

public:
  using executor_type = Executor;
  using native_handle_type = typename base_type::native_handle_type;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_stream_descriptor<Executor1>;
  };

  explicit basic_stream_descriptor(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_stream_descriptor(ExecutionContext& context) : base_type(context)
  {
  }

  basic_stream_descriptor(const executor_type& ex, const native_handle_type& native_descriptor)
    : base_type(ex, native_descriptor)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_stream_descriptor(ExecutionContext& context, const native_handle_type& native_descriptor)
    : base_type(context, native_descriptor)
  {
  }

  basic_stream_descriptor(basic_stream_descriptor&& other) noexcept = default;
  basic_stream_descriptor& operator=(basic_stream_descriptor&& other) = default;

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_stream_descriptor(basic_stream_descriptor<Executor1>&& other)
    : base_type(std::move(other))
  {
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_stream_descriptor& operator=(basic_stream_descriptor<Executor1>&& other)
  {
    base_type::operator=(std::move(other));
    return *this;
  }

  /// Writes some data, blocking until at least one byte is written.
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers)
  {
    boost::system::error_code ec;
    std::size_t n = write_some(buffers, ec);
    boost::asio::detail::throw_error(ec, "write_some");
    return n;
  }

  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec)
  {
    return detail::sync_write(this->fd(), this->state_flags(), -1, buffers, ec);
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
        typename base_type::template initiate_transfer<boost::asio::const_buffer>(this), token,
        buffers, std::int64_t(-1));
  }

  /// Reads some data, blocking until at least one byte is read (or the end).
  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers)
  {
    boost::system::error_code ec;
    std::size_t n = read_some(buffers, ec);
    boost::asio::detail::throw_error(ec, "read_some");
    return n;
  }

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec)
  {
    return detail::sync_read(this->fd(), this->state_flags(), -1, buffers, ec);
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
        typename base_type::template initiate_transfer<boost::asio::mutable_buffer>(this), token,
        buffers, std::int64_t(-1));
  }
};

} // namespace posix
} // namespace zokio

#endif // ZOKIO_POSIX_BASIC_STREAM_DESCRIPTOR_HPP
