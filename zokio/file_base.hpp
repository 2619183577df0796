// zokio/file_base.hpp: the open flags and seek bases of zokio's files, as
// boost::asio::file_base.
//
// Where Boost.Asio has file support of its own (BOOST_ASIO_HAS_FILE: built
// with BOOST_ASIO_HAS_IO_URING) this is Asio's class, so code written for
// asio::stream_file compiles after the type swap; otherwise zokio defines
// the same names with the same values (the O_ and SEEK_ constants).
#ifndef ZOKIO_FILE_BASE_HPP
#define ZOKIO_FILE_BASE_HPP

#include <boost/asio/detail/config.hpp>

#if defined(BOOST_ASIO_HAS_FILE)
#include <boost/asio/file_base.hpp>
#endif

#include <fcntl.h>
#include <unistd.h>

namespace zokio {

#if defined(BOOST_ASIO_HAS_FILE)

using file_base = boost::asio::file_base;

#else

/// The flags a file is opened with, and the bases of stream_file::seek.
class file_base
{
public:
  /// Bitmask of open flags.
  enum flags
  {
    read_only = O_RDONLY,
    write_only = O_WRONLY,
    read_write = O_RDWR,
    append = O_APPEND,
    create = O_CREAT,
    exclusive = O_EXCL,
    truncate = O_TRUNC,
    sync_all_on_write = O_SYNC
  };

  friend flags operator&(flags x, flags y)
  {
    return static_cast<flags>(static_cast<unsigned>(x) & static_cast<unsigned>(y));
  }
  friend flags operator|(flags x, flags y)
  {
    return static_cast<flags>(static_cast<unsigned>(x) | static_cast<unsigned>(y));
  }
  friend flags operator^(flags x, flags y)
  {
    return static_cast<flags>(static_cast<unsigned>(x) ^ static_cast<unsigned>(y));
  }
  friend flags operator~(flags x) { return static_cast<flags>(~static_cast<unsigned>(x)); }
  friend flags& operator&=(flags& x, flags y) { return x = x & y; }
  friend flags& operator|=(flags& x, flags y) { return x = x | y; }
  friend flags& operator^=(flags& x, flags y) { return x = x ^ y; }

  /// Basis for seeking in a file.
  enum seek_basis
  {
    seek_set = SEEK_SET,
    seek_cur = SEEK_CUR,
    seek_end = SEEK_END
  };

protected:
  ~file_base() = default;
};

#endif

} // namespace zokio

#endif // ZOKIO_FILE_BASE_HPP
