// libs/detail/transfer.hpp: the system call a file or descriptor request
// names (io_request::read, readv, write, writev, fsync, openat, statx,
// ftruncate), made once.
//
// Shared by the readiness drivers (descriptors that can be waited for) and
// the blocking pool (regular files): both make exactly the call the request
// describes and interpret errno themselves.
#ifndef ZOKIO_LIBS_DETAIL_TRANSFER_HPP
#define ZOKIO_LIBS_DETAIL_TRANSFER_HPP

#include <zokio/detail/io_operation.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace zokio {
namespace detail {

// Whether q is one of the requests transfer() makes.
inline bool is_transfer(const io_request& q) noexcept
{
  return q.kind == io_request::read || q.kind == io_request::readv
      || q.kind == io_request::write || q.kind == io_request::writev
      || q.kind == io_request::fsync || q.kind == io_request::openat
      || q.kind == io_request::statx || q.kind == io_request::ftruncate;
}

inline bool is_write(const io_request& q) noexcept
{
  return q.kind == io_request::write || q.kind == io_request::writev;
}

// Makes q's call once: the bytes transferred, the descriptor (openat), 0
// (fsync, statx, ftruncate), or -1 with errno.
inline long transfer(const io_request& q) noexcept
{
  const int count = static_cast<int>(q.size);
  switch (q.kind)
  {
  case io_request::read:
    return q.offset < 0 ? ::read(q.fd, q.data, q.size)
                        : ::pread(q.fd, q.data, q.size, static_cast<::off_t>(q.offset));
  case io_request::readv:
    return q.offset < 0 ? ::readv(q.fd, static_cast<const ::iovec*>(q.data), count)
                        : ::preadv(q.fd, static_cast<const ::iovec*>(q.data), count,
                              static_cast<::off_t>(q.offset));
  case io_request::write:
    return q.offset < 0 ? ::write(q.fd, q.data, q.size)
                        : ::pwrite(q.fd, q.data, q.size, static_cast<::off_t>(q.offset));
  case io_request::writev:
    return q.offset < 0 ? ::writev(q.fd, static_cast<const ::iovec*>(q.data), count)
                        : ::pwritev(q.fd, static_cast<const ::iovec*>(q.data), count,
                              static_cast<::off_t>(q.offset));
  case io_request::fsync:
#if defined(__APPLE__)
    return ::fsync(q.fd);  // no fdatasync
#else
    return q.flags == io_request::fsync_data ? ::fdatasync(q.fd) : ::fsync(q.fd);
#endif
  case io_request::openat:
    return ::openat(AT_FDCWD, static_cast<const char*>(q.data), q.flags | O_CLOEXEC,
        static_cast<::mode_t>(q.size));
  case io_request::statx:
#if defined(__linux__)
    return ::statx(q.fd, "", AT_EMPTY_PATH, STATX_SIZE, static_cast<struct ::statx*>(q.data));
#else
    return ::fstat(q.fd, static_cast<struct ::stat*>(q.data));
#endif
  case io_request::ftruncate:
    return ::ftruncate(q.fd, static_cast<::off_t>(q.offset));
  default:
    errno = EINVAL;
    return -1;
  }
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_TRANSFER_HPP
