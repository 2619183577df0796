// zokio/error.hpp: error conditions specific to zokio.
//
// Operations complete with boost::system::error_code. Errors the kernel reports
// are system errors (so ECANCELED compares equal to
// boost::asio::error::operation_aborted); the values here are the conditions
// that only zokio can name.
#ifndef ZOKIO_ERROR_HPP
#define ZOKIO_ERROR_HPP

#include <zokio/detail/config.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace zokio {
namespace error {

/// zokio-specific error values, in the category returned by get_zokio_category().
enum zokio_errors
{
  /// io_uring cannot be used on this system (kernel too old, disabled by
  /// sysctl, refused by a seccomp profile, or locked memory limit too low).
  io_uring_unavailable = 1,

  /// The running kernel does not support the io_uring operation required.
  operation_not_supported,

  /// An executor that does not belong to zokio was given where a zokio
  /// executor is required.
  not_a_zokio_executor,

  /// A blocking wait was requested on a thread that is running the context
  /// which would have to complete it.
  would_deadlock,

  /// The backend that ZOKIO_BACKEND names is unknown, not built in, or
  /// cannot be used on this system.
  backend_unavailable,
};

/// The category of zokio_errors.
const boost::system::error_category& get_zokio_category() noexcept;

inline boost::system::error_code make_error_code(zokio_errors e) noexcept
{
  return boost::system::error_code(static_cast<int>(e), get_zokio_category());
}

} // namespace error
} // namespace zokio

namespace boost {
namespace system {

template <>
struct is_error_code_enum<zokio::error::zokio_errors> : std::true_type
{
};

} // namespace system
} // namespace boost

#endif // ZOKIO_ERROR_HPP
