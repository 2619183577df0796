// zokio/detail/socket/descriptor_io.hpp: the synchronous reads and writes of
// descriptors and files (read_some, write_some, their _at forms), and the
// file requests made on the calling thread.
//
// Each makes the system call and, on a descriptor the readiness backend
// made non-blocking behind the user's back (internal_non_blocking), waits
// with poll() when it would block, as Asio's descriptor_ops do. A write
// never raises SIGPIPE (it reports broken_pipe). A read of zero bytes into
// a non-empty buffer is boost::asio::error::eof.
#ifndef ZOKIO_DETAIL_SOCKET_DESCRIPTOR_IO_HPP
#define ZOKIO_DETAIL_SOCKET_DESCRIPTOR_IO_HPP

#include <zokio/detail/io_operation.hpp>
#include <zokio/detail/socket/socket_buffers.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>

#include <sys/uio.h>

namespace zokio {
namespace detail {

// state: Asio's socket_ops state bits of the descriptor. offset -1: the
// current position. iov: count buffers of total bytes in all.
std::size_t sync_read(int fd, unsigned char state, std::int64_t offset, const ::iovec* iov,
    std::size_t count, std::size_t total, boost::system::error_code& ec);

std::size_t sync_write(int fd, unsigned char state, std::int64_t offset, const ::iovec* iov,
    std::size_t count, std::size_t total, boost::system::error_code& ec);

// The same for an Asio buffer sequence (the first stream_max_buffers).
template <typename MutableBufferSequence>
std::size_t sync_read(int fd, unsigned char state, std::int64_t offset,
    const MutableBufferSequence& buffers, boost::system::error_code& ec)
{
  socket_buffers<boost::asio::mutable_buffer, MutableBufferSequence, stream_max_buffers> b(buffers);
  return sync_read(fd, state, offset, b.iov(), b.count(), b.total_size(), ec);
}

template <typename ConstBufferSequence>
std::size_t sync_write(int fd, unsigned char state, std::int64_t offset,
    const ConstBufferSequence& buffers, boost::system::error_code& ec)
{
  socket_buffers<boost::asio::const_buffer, ConstBufferSequence, stream_max_buffers> b(buffers);
  return sync_write(fd, state, offset, b.iov(), b.count(), b.total_size(), ec);
}

// A read request (read or readv) of a regular file made at once if the page
// cache holds its data: preadv2 with RWF_NOWAIT. The bytes read (0 at the
// end of the file), -EAGAIN when it would wait for the disk, -EOPNOTSUPP
// where the file system (or the system) does not offer it, or another
// -errno.
int read_cached(const io_request& q) noexcept;

// Whether reads are tried from the page cache first: yes, unless
// ZOKIO_FILE_READ_NOWAIT=0 (tests of the other path; comparisons).
bool cached_reads_enabled() noexcept;

// Makes the system call q names (io_request::read ... ftruncate) on the
// calling thread: its result, or -errno. For the file requests a ring
// without their opcode cannot make (file_request_op.hpp).
int make_request_now(const io_request& q) noexcept;

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_DESCRIPTOR_IO_HPP
