// zokio/writable_pipe.hpp: the write end of a pipe on any executor of a zokio
// context, as boost::asio::writable_pipe.
#ifndef ZOKIO_WRITABLE_PIPE_HPP
#define ZOKIO_WRITABLE_PIPE_HPP

#include <zokio/basic_writable_pipe.hpp>

namespace zokio {

/// The write end of a pipe.
using writable_pipe = basic_writable_pipe<>;

} // namespace zokio

#endif // ZOKIO_WRITABLE_PIPE_HPP
