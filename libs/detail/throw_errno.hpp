// libs/detail/throw_errno.hpp: a failed system call as Asio reports it.
#ifndef ZOKIO_LIBS_DETAIL_THROW_ERRNO_HPP
#define ZOKIO_LIBS_DETAIL_THROW_ERRNO_HPP

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

namespace zokio {
namespace detail {

// Throws boost::system::system_error with err in the system category and
// what naming the call.
[[noreturn]] inline void throw_errno(int err, const char* what)
{
  throw boost::system::system_error(
      boost::system::error_code(err, boost::asio::error::get_system_category()), what);
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_THROW_ERRNO_HPP
