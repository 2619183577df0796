// zokio/readable_pipe.hpp: the read end of a pipe on any executor of a zokio
// context, as boost::asio::readable_pipe.
#ifndef ZOKIO_READABLE_PIPE_HPP
#define ZOKIO_READABLE_PIPE_HPP

#include <zokio/basic_readable_pipe.hpp>

namespace zokio {

/// The read end of a pipe.
using readable_pipe = basic_readable_pipe<>;

} // namespace zokio

#endif // ZOKIO_READABLE_PIPE_HPP
