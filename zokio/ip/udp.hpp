// zokio/ip/udp.hpp: UDP on a zokio context, named as boost::asio::ip::udp.
#ifndef ZOKIO_IP_UDP_HPP
#define ZOKIO_IP_UDP_HPP

#include <zokio/basic_datagram_socket.hpp>
#include <zokio/connect.hpp>

#include <boost/asio/ip/udp.hpp>

namespace zokio {
namespace ip {

/// The UDP names of boost::asio::ip::udp with zokio's socket.
/**
 * `using zokio::ip::udp;` can replace `using boost::asio::ip::udp;`:
 * udp::socket is zokio's (io_uring) datagram socket; udp::endpoint,
 * udp::resolver, udp::v4() and udp::v6() are Asio's. The protocol type of the
 * socket is boost::asio::ip::udp itself; the class derives from it, so a `udp`
 * value (`udp p = udp::v4();`) is Asio's protocol with family(), type(),
 * protocol() and comparisons.
 */
class udp : public boost::asio::ip::udp
{
public:
  /// The protocol (Asio's).
  using protocol_type = boost::asio::ip::udp;

  /// The type of a UDP endpoint (Asio's).
  using endpoint = boost::asio::ip::udp::endpoint;

  /// The UDP resolver type (Asio's).
  using resolver = boost::asio::ip::udp::resolver;

  /// The UDP socket type (zokio's).
  using socket = zokio::basic_datagram_socket<boost::asio::ip::udp>;

  /// UDP over IPv4.
  static boost::asio::ip::udp v4() noexcept { return boost::asio::ip::udp::v4(); }

  /// UDP over IPv6.
  static boost::asio::ip::udp v6() noexcept { return boost::asio::ip::udp::v6(); }

  /// A protocol value from Asio's (as returned by v4() and v6()), so that
  /// `udp p = udp::v4();` compiles as with Asio's class; family(),
  /// type() and protocol() are Asio's.
  udp(const boost::asio::ip::udp& p) noexcept : boost::asio::ip::udp(p) {}
};

} // namespace ip
} // namespace zokio

#endif // ZOKIO_IP_UDP_HPP
