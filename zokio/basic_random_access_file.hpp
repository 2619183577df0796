// zokio/basic_random_access_file.hpp: a file read and written at given
// offsets, with the interface of boost::asio::basic_random_access_file.
#ifndef ZOKIO_BASIC_RANDOM_ACCESS_FILE_HPP
#define ZOKIO_BASIC_RANDOM_ACCESS_FILE_HPP

#include <zokio/basic_file.hpp>
#include <zokio/detail/socket/descriptor_io.hpp>

#include <boost/asio/buffer.hpp>

namespace zokio {

/// A file read and written at offsets: any number of transfers in flight.
/**
 * A model of Asio's AsyncRandomAccessReadDevice and
 * AsyncRandomAccessWriteDevice (asio::async_read_at, async_write_at work
 * on it). Transfers never move the file position (pread / pwrite, or an
 * io_uring request at the offset). A read at or beyond the end of the file
 * completes with boost::asio::error::eof.
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_random_access_file : public basic_file<Executor>
{
  using base_type = basic_file<Executor>;

public:
  using executor_type = Executor;
  using native_handle_type = typename base_type::native_handle_type;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_random_access_file<Executor1>;
  };

  using base_type::base_type;

  basic_random_access_file(basic_random_access_file&&) noexcept = default;
  basic_random_access_file& operator=(basic_random_access_file&&) = default;

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_random_access_file(basic_random_access_file<Executor1>&& other)
    : base_type(std::move(other))
  {
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_random_access_file& operator=(basic_random_access_file<Executor1>&& other)
  {
    base_type::operator=(std::move(other));
    return *this;
  }

  ~basic_random_access_file() = default;

  template <typename ConstBufferSequence>
  std::size_t write_some_at(std::uint64_t offset, const ConstBufferSequence& buffers)
  {
    boost::system::error_code ec;
    std::size_t n = write_some_at(offset, buffers, ec);
    boost::asio::detail::throw_error(ec, "write_some_at");
    return n;
  }

  template <typename ConstBufferSequence>
  std::size_t write_some_at(std::uint64_t offset, const ConstBufferSequence& buffers,
      boost::system::error_code& ec)
  {
    return detail::sync_write(this->fd(), this->state_flags(), this->request_offset(offset),
        buffers, ec);
  }

  /// Writes some data at offset.
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
  auto async_write_some_at(std::uint64_t offset, const ConstBufferSequence& buffers,
      WriteToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        typename base_type::template initiate_transfer<boost::asio::const_buffer>(this), token,
        buffers, this->request_offset(offset));
  }

  template <typename MutableBufferSequence>
  std::size_t read_some_at(std::uint64_t offset, const MutableBufferSequence& buffers)
  {
    boost::system::error_code ec;
    std::size_t n = read_some_at(offset, buffers, ec);
    boost::asio::detail::throw_error(ec, "read_some_at");
    return n;
  }

  template <typename MutableBufferSequence>
  std::size_t read_some_at(std::uint64_t offset, const MutableBufferSequence& buffers,
      boost::system::error_code& ec)
  {
    return detail::sync_read(this->fd(), this->state_flags(), this->request_offset(offset),
        buffers, ec);
  }

  /// Reads some data at offset (eof at or beyond the end of the file).
  template <typename MutableBufferSequence,
      typename ReadToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some_at(std::uint64_t offset, const MutableBufferSequence& buffers,
      ReadToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        typename base_type::template initiate_transfer<boost::asio::mutable_buffer>(this), token,
        buffers, this->request_offset(offset));
  }
};

/// A random-access file on any executor of a zokio context.
using random_access_file = basic_random_access_file<>;

} // namespace zokio

#endif // ZOKIO_BASIC_RANDOM_ACCESS_FILE_HPP
