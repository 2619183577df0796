// zokio/zokio.hpp: everything zokio provides.
#ifndef ZOKIO_ZOKIO_HPP
#define ZOKIO_ZOKIO_HPP

#include <zokio/async_open_file.hpp>
#include <zokio/basic_datagram_socket.hpp>
#include <zokio/basic_file.hpp>
#include <zokio/basic_random_access_file.hpp>
#include <zokio/basic_readable_pipe.hpp>
#include <zokio/basic_signal_set.hpp>
#include <zokio/basic_socket.hpp>
#include <zokio/basic_socket_acceptor.hpp>
#include <zokio/basic_stream_file.hpp>
#include <zokio/basic_stream_socket.hpp>
#include <zokio/basic_writable_pipe.hpp>
#include <zokio/connect.hpp>
#include <zokio/connect_pipe.hpp>
#include <zokio/error.hpp>
#include <zokio/file_base.hpp>
#include <zokio/future.hpp>
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/ip/udp.hpp>
#include <zokio/posix/basic_descriptor.hpp>
#include <zokio/posix/basic_stream_descriptor.hpp>
#include <zokio/posix/stream_descriptor.hpp>
#include <zokio/priority.hpp>
#include <zokio/process.hpp>
#include <zokio/provided_buffer_pool.hpp>
#include <zokio/random_access_file.hpp>
#include <zokio/readable_pipe.hpp>
#include <zokio/signal_set.hpp>
#include <zokio/spawn.hpp>
#include <zokio/statistics.hpp>
#include <zokio/stream_file.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timer/basic_waitable_timer.hpp>
#include <zokio/timer/high_resolution_timer.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/timer/system_timer.hpp>
#include <zokio/timeout.hpp>
#include <zokio/when_all.hpp>
#include <zokio/when_any.hpp>
#include <zokio/writable_pipe.hpp>

#endif // ZOKIO_ZOKIO_HPP
