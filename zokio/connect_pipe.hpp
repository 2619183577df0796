// zokio/connect_pipe.hpp: makes a pipe and gives its ends to a readable and
// a writable pipe object, as boost::asio::connect_pipe.
#ifndef ZOKIO_CONNECT_PIPE_HPP
#define ZOKIO_CONNECT_PIPE_HPP

#include <zokio/basic_readable_pipe.hpp>
#include <zokio/basic_writable_pipe.hpp>

#include <boost/asio/detail/throw_error.hpp>
#include <boost/asio/error.hpp>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace zokio {
namespace detail {

// A pipe whose ends are close-on-exec (a child process gets an end only
// when it is handed over explicitly); false with ec set on failure.
inline bool make_pipe(int fds[2], boost::system::error_code& ec) noexcept
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (::pipe2(fds, O_CLOEXEC) == 0)
    return true;
#else
  if (::pipe(fds) == 0)
  {
    ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return true;
  }
#endif
  ec.assign(errno, boost::asio::error::get_system_category());
  return false;
}

} // namespace detail

/// Connects read_end and write_end through a new pipe (close-on-exec).
/**
 * Both objects must be closed; on failure neither is changed and no
 * descriptor is left open.
 */
template <typename Executor1, typename Executor2>
void connect_pipe(basic_readable_pipe<Executor1>& read_end,
    basic_writable_pipe<Executor2>& write_end, boost::system::error_code& ec)
{
  if (read_end.is_open() || write_end.is_open())
  {
    ec = boost::asio::error::already_open;
    return;
  }
  int fds[2];
  if (!detail::make_pipe(fds, ec))
    return;
  read_end.assign(fds[0], ec);
  if (ec)
  {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  write_end.assign(fds[1], ec);
  if (ec)
  {
    read_end.close();
    ::close(fds[1]);
  }
}

template <typename Executor1, typename Executor2>
void connect_pipe(basic_readable_pipe<Executor1>& read_end,
    basic_writable_pipe<Executor2>& write_end)
{
  boost::system::error_code ec;
  connect_pipe(read_end, write_end, ec);
  boost::asio::detail::throw_error(ec, "connect_pipe");
}

} // namespace zokio

#endif // ZOKIO_CONNECT_PIPE_HPP
