// zokio/ip/tcp.hpp: TCP on a zokio context, named as boost::asio::ip::tcp.
#ifndef ZOKIO_IP_TCP_HPP
#define ZOKIO_IP_TCP_HPP

#include <zokio/basic_socket_acceptor.hpp>
#include <zokio/basic_stream_socket.hpp>
#include <zokio/connect.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace zokio {
namespace ip {

/// The TCP names of boost::asio::ip::tcp with zokio's I/O objects.
/**
 * `using zokio::ip::tcp;` can replace `using boost::asio::ip::tcp;`:
 * tcp::socket and tcp::acceptor are zokio's (io_uring) objects; tcp::endpoint,
 * tcp::resolver, tcp::v4(), tcp::v6(), tcp::no_delay and tcp::iostream are
 * Asio's. The protocol type of the sockets is boost::asio::ip::tcp itself, so
 * endpoints, resolver results and options are shared with Asio code; the class
 * derives from it, so a `tcp` value (`tcp p = tcp::v4();`) is Asio's protocol
 * with family(), type(), protocol() and comparisons.
 */
class tcp : public boost::asio::ip::tcp
{
public:
  /// The protocol (Asio's).
  using protocol_type = boost::asio::ip::tcp;

  /// The type of a TCP endpoint (Asio's).
  using endpoint = boost::asio::ip::tcp::endpoint;

  /// The TCP resolver type (Asio's).
  using resolver = boost::asio::ip::tcp::resolver;

  /// The TCP socket type (zokio's).
  using socket = zokio::basic_stream_socket<boost::asio::ip::tcp>;

  /// The TCP acceptor type (zokio's).
  using acceptor = zokio::basic_socket_acceptor<boost::asio::ip::tcp>;

  /// Socket option for disabling the Nagle algorithm (TCP_NODELAY).
  using no_delay = boost::asio::ip::tcp::no_delay;

  /// TCP over IPv4.
  static boost::asio::ip::tcp v4() noexcept { return boost::asio::ip::tcp::v4(); }

  /// TCP over IPv6.
  static boost::asio::ip::tcp v6() noexcept { return boost::asio::ip::tcp::v6(); }

  /// A protocol value from Asio's (as returned by v4() and v6()), so that
  /// `tcp p = tcp::v4();` compiles as with Asio's class; family(),
  /// type() and protocol() are Asio's.
  tcp(const boost::asio::ip::tcp& p) noexcept : boost::asio::ip::tcp(p) {}
};

} // namespace ip
} // namespace zokio

#endif // ZOKIO_IP_TCP_HPP
