// zokio/stream_file.hpp: zokio::stream_file, as boost::asio::stream_file.
#ifndef ZOKIO_STREAM_FILE_HPP
#define ZOKIO_STREAM_FILE_HPP

#include <zokio/basic_stream_file.hpp>

#endif // ZOKIO_STREAM_FILE_HPP
