// zokio/posix/stream_descriptor.hpp: the stream descriptor on any executor
// of a zokio context, as boost::asio::posix::stream_descriptor.
#ifndef ZOKIO_POSIX_STREAM_DESCRIPTOR_HPP
#define ZOKIO_POSIX_STREAM_DESCRIPTOR_HPP

#include <zokio/posix/basic_stream_descriptor.hpp>

namespace zokio {
namespace posix {

/// A stream-oriented descriptor (pipe, terminal, eventfd...).
using stream_descriptor = basic_stream_descriptor<>;

} // namespace posix
} // namespace zokio

#endif // ZOKIO_POSIX_STREAM_DESCRIPTOR_HPP
