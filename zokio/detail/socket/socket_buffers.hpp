// zokio/detail/socket/socket_buffers.hpp: an Asio buffer sequence as the
// iovec array a socket SQE names.
#ifndef ZOKIO_DETAIL_SOCKET_SOCKET_BUFFERS_HPP
#define ZOKIO_DETAIL_SOCKET_SOCKET_BUFFERS_HPP

#include <zokio/detail/config.hpp>

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <type_traits>

#include <sys/uio.h>

namespace zokio {
namespace detail {

// Buffers per stream operation. A sequence with more buffers transfers from
// the first stream_max_buffers only, which read_some / write_some allow (the
// composed operations then continue with the rest). Arbitrary: 16 iovecs
// keep the operation object under the 1 KiB that Asio's recycling allocator
// caches, and sequences built by Asio and Beast rarely have more.
constexpr std::size_t stream_max_buffers = 16;

// Buffers per datagram operation: a datagram cannot be split, so this is
// Asio's own limit (buffer_sequence_adapter's max_buffers).
constexpr std::size_t datagram_max_buffers = 64;

// Buffer is boost::asio::mutable_buffer or const_buffer. A sequence type
// convertible to Buffer holds exactly one buffer and is stored as such.
template <typename Buffer, typename Buffers, std::size_t Max,
    bool Single = std::is_convertible_v<const Buffers&, Buffer>>
class socket_buffers;

template <typename Buffer, typename Buffers, std::size_t Max>
class socket_buffers<Buffer, Buffers, Max, true>
{
public:
  explicit socket_buffers(const Buffers& buffers) noexcept
  {
    Buffer b(buffers);
    iov_.iov_base = const_cast<void*>(static_cast<const void*>(b.data()));
    iov_.iov_len = b.size();
  }

  std::size_t count() const noexcept { return 1; }
  std::size_t total_size() const noexcept { return iov_.iov_len; }
  ::iovec* iov() noexcept { return &iov_; }

private:
  ::iovec iov_;
};

template <typename Buffer, typename Buffers, std::size_t Max>
class socket_buffers<Buffer, Buffers, Max, false>
{
public:
  explicit socket_buffers(const Buffers& buffers) noexcept
  {
    auto it = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    for (; it != end && count_ < Max; ++it)
    {
      Buffer b(*it);
      iov_[count_].iov_base = const_cast<void*>(static_cast<const void*>(b.data()));
      iov_[count_].iov_len = b.size();
      total_ += b.size();
      ++count_;
    }
  }

  std::size_t count() const noexcept { return count_; }
  std::size_t total_size() const noexcept { return total_; }
  ::iovec* iov() noexcept { return iov_; }

private:
  ::iovec iov_[Max];
  std::size_t count_ = 0;
  std::size_t total_ = 0;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_SOCKET_BUFFERS_HPP
