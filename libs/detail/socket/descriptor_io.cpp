// libs/detail/socket/descriptor_io.cpp: see zokio/detail/socket/descriptor_io.hpp.
#include <zokio/detail/socket/descriptor_io.hpp>

#include "detail/sigpipe.hpp"
#include "detail/transfer.hpp"

#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/error.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace {

namespace socket_ops = boost::asio::detail::socket_ops;

boost::system::error_code errno_code(int e) noexcept
{
  return boost::system::error_code(e, boost::asio::error::get_system_category());
}

// Waits until fd is ready for events; false with ec set on failure.
bool wait_ready(int fd, short events, boost::system::error_code& ec) noexcept
{
  ::pollfd p{fd, events, 0};
  for (;;)
  {
    int r = ::poll(&p, 1, -1);
    if (r >= 0)
      return true;
    if (errno != EINTR)
    {
      ec = errno_code(errno);
      return false;
    }
  }
}

template <bool Write>
std::size_t transfer(int fd, unsigned char state, std::int64_t offset, const ::iovec* iov,
    std::size_t count, std::size_t total, boost::system::error_code& ec)
{
  if (fd < 0)
  {
    ec = boost::asio::error::bad_descriptor;
    return 0;
  }
  if (total == 0)
  {
    ec = boost::system::error_code();
    return 0;
  }
  const int n = static_cast<int>(count);
  for (;;)
  {
    long r;
    if constexpr (Write)
      r = offset < 0 ? ::writev(fd, iov, n) : ::pwritev(fd, iov, n, static_cast<::off_t>(offset));
    else
      r = offset < 0 ? ::readv(fd, iov, n) : ::preadv(fd, iov, n, static_cast<::off_t>(offset));
    if (r > 0)
    {
      ec = boost::system::error_code();
      return static_cast<std::size_t>(r);
    }
    if (r == 0)
    {
      ec = Write ? boost::system::error_code() : boost::asio::error::eof;
      return 0;
    }
    const int e = errno;
    if (e == EINTR)
      continue;
    // Would block: a user's non-blocking mode says so; a mode the readiness
    // backend set waits here, as a blocking descriptor would have.
    if ((e == EAGAIN || e == EWOULDBLOCK) && !(state & socket_ops::user_set_non_blocking)
        && (state & socket_ops::internal_non_blocking))
    {
      if (!wait_ready(fd, Write ? POLLOUT : POLLIN, ec))
        return 0;
      continue;
    }
    ec = errno_code(e);
    return 0;
  }
}

} // namespace

std::size_t sync_read(int fd, unsigned char state, std::int64_t offset, const ::iovec* iov,
    std::size_t count, std::size_t total, boost::system::error_code& ec)
{
  return transfer<false>(fd, state, offset, iov, count, total, ec);
}

std::size_t sync_write(int fd, unsigned char state, std::int64_t offset, const ::iovec* iov,
    std::size_t count, std::size_t total, boost::system::error_code& ec)
{
  // A pipe whose reader has gone: broken_pipe, not a signal.
  sigpipe::scope no_signal;
  return transfer<true>(fd, state, offset, iov, count, total, ec);
}

int read_cached(const io_request& q) noexcept
{
#if defined(__linux__) && defined(RWF_NOWAIT)
  ::iovec one;
  const ::iovec* iov = static_cast<const ::iovec*>(q.data);
  int count = static_cast<int>(q.size);
  if (q.kind == io_request::read)
  {
    one.iov_base = q.data;
    one.iov_len = q.size;
    iov = &one;
    count = 1;
  }
  ::ssize_t r;
  do
    r = ::preadv2(q.fd, iov, count, static_cast<::off_t>(q.offset), RWF_NOWAIT);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : static_cast<int>(r);
#else
  (void)q;
  return -EOPNOTSUPP;
#endif
}

bool cached_reads_enabled() noexcept
{
  static const bool on = [] {
    const char* v = std::getenv("ZOKIO_FILE_READ_NOWAIT");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

int make_request_now(const io_request& q) noexcept
{
  long r;
  do
    r = transfer(q);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : static_cast<int>(r);
}

} // namespace detail
} // namespace zokio
