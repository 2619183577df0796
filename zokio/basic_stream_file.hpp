// zokio/basic_stream_file.hpp: a file read and written at its current
// position, with the interface of boost::asio::basic_stream_file.
#ifndef ZOKIO_BASIC_STREAM_FILE_HPP
#define ZOKIO_BASIC_STREAM_FILE_HPP

#include <zokio/basic_file.hpp>
#include <zokio/detail/socket/descriptor_io.hpp>

#include <boost/asio/buffer.hpp>

namespace zokio {

/// A file as a stream: each read or write starts where the last ended.
/**
 * A model of Asio's AsyncReadStream and AsyncWriteStream (asio::async_read,
 * async_write, async_read_until work on it). On io_uring a transfer names
 * offset -1, so the kernel moves the file position; on epoll and kqueue the
 * blocking pool makes read() or write(). One transfer at a time: two in
 * flight at once would race for the position (as with Asio's stream_file).
 * A read at the end of the file completes with boost::asio::error::eof.
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_stream_file : public basic_file<Executor>
{
  using base_type = basic_file<Executor>;

public:
  using executor_type = Executor;
  using native_handle_type = typename base_type::native_handle_type;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_stream_file<Executor1>;
  };

  using base_type::base_type;

  basic_stream_file(basic_stream_file&&) noexcept = default;
  basic_stream_file& operator=(basic_stream_file&&) = default;

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_stream_file(basic_stream_file<Executor1>&& other) : base_type(std::move(other))
  {
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_stream_file& operator=(basic_stream_file<Executor1>&& other)
  {
    base_type::operator=(std::move(other));
    return *this;
  }

  ~basic_stream_file() = default;

  /// Moves the file position; returns the new one.
  std::uint64_t seek(std::int64_t offset, file_base::seek_basis whence)
  {
    boost::system::error_code ec;
    std::uint64_t n = seek(offset, whence, ec);
    boost::asio::detail::throw_error(ec, "seek");
    return n;
  }

  std::uint64_t seek(std::int64_t offset, file_base::seek_basis whence,
      boost::system::error_code& ec)
  {
    ::off_t r = ::lseek(this->fd(), static_cast<::off_t>(offset), static_cast<int>(whence));
    if (r < 0)
    {
      ec.assign(errno, boost::asio::error::get_system_category());
      return 0;
    }
    ec = boost::system::error_code();
    return static_cast<std::uint64_t>(r);
  }

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

  /// Writes some data at the current position.
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code, std::size_t) @endcode
   *
   * @par Per-Operation Cancellation
   * Terminal, partial and total (a write the kernel or the pool has started
   * completes).
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

  /// Reads some data at the current position (eof at the end of the file).
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

/// A stream file on any executor of a zokio context.
using stream_file = basic_stream_file<>;

} // namespace zokio

#endif // ZOKIO_BASIC_STREAM_FILE_HPP
