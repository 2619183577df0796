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
 * socket is boost::asio::ip::udp itself.
 */
class udp
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

  udp() = delete;
};

} // namespace ip
} // namespace zokio

#endif // ZOKIO_IP_UDP_HPP
