// zokio/connect.hpp: connecting a zokio socket to the first endpoint of a
// sequence that accepts, as boost::asio::connect / async_connect.
//
// Asio's range connect functions take boost::asio::basic_socket only, so the
// same overloads are provided here for zokio::basic_socket, in namespace
// zokio and (forwarding) in namespace boost::asio, where a program's
// `boost::asio::async_connect(socket, resolver_results, token)` finds them.
#ifndef ZOKIO_CONNECT_HPP
#define ZOKIO_CONNECT_HPP

#include <zokio/basic_socket.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <iterator>
#include <utility>

namespace zokio {
namespace detail {

// Accepts every endpoint.
struct default_connect_condition
{
  template <typename Endpoint>
  bool operator()(const boost::system::error_code&, const Endpoint&) const noexcept
  {
    return true;
  }
};

// Skips the endpoints the condition rejects, starting at it.
template <typename Iterator, typename ConnectCondition>
Iterator next_acceptable(Iterator it, Iterator end, ConnectCondition& condition,
    const boost::system::error_code& ec)
{
  for (; it != end; ++it)
    if (condition(ec, *it))
      break;
  return it;
}

// Tries each endpoint of [begin, end) in turn: close, async_connect; the
// first that connects ends the operation. Completes with the iterator of the
// endpoint that connected (or end and the last error; not_found when no
// endpoint was tried). Range (an endpoint sequence copied into the
// operation) is void for the iterator forms.
template <typename Protocol, typename Executor, typename Range, typename Iterator,
    typename ConnectCondition, bool ByEndpoint>
class range_connect_op
{
public:
  range_connect_op(basic_socket<Protocol, Executor>& socket, Range range, ConnectCondition condition)
    : socket_(socket), range_(std::move(range)), condition_(std::move(condition))
  {
    iter_ = range_.begin();
    end_ = range_.end();
  }

  range_connect_op(basic_socket<Protocol, Executor>& socket, Iterator begin, Iterator end,
      ConnectCondition condition)
    requires std::is_same_v<Range, int>
    : socket_(socket), range_(0), iter_(begin), end_(end), condition_(std::move(condition))
  {
  }

  template <typename Self>
  void operator()(Self& self)
  {
    self.reset_cancellation_state(boost::asio::enable_partial_cancellation());
    try_next(self);
  }

  template <typename Self>
  void operator()(Self& self, boost::system::error_code ec)
  {
    if (!ec)
      return finish(self, ec);
    last_ec_ = ec;
    if (!!self.cancelled() || !socket_.is_open())
      return finish(self, boost::asio::error::operation_aborted);
    ++iter_;
    try_next(self);
  }

private:
  template <typename Self>
  void try_next(Self& self)
  {
    iter_ = next_acceptable(iter_, end_, condition_, last_ec_);
    if (iter_ == end_)
    {
      boost::system::error_code ec = last_ec_;
      if (!ec)
        ec = boost::asio::error::not_found;
      if (!tried_)
      {
        // Nothing was started: complete through the executor, never inside
        // the initiating function.
        return boost::asio::post(socket_.get_executor(),
            [self = std::move(self), ec, result = result_for_end()]() mutable {
              self.complete(ec, std::move(result));
            });
      }
      return self.complete(ec, result_for_end());
    }
    tried_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    socket_.async_connect(*iter_, std::move(self));
  }

  template <typename Self>
  void finish(Self& self, const boost::system::error_code& ec)
  {
    if (ec)
      self.complete(ec, result_for_end());
    else
      self.complete(ec, result_for(iter_));
  }

  auto result_for(Iterator it) const
  {
    if constexpr (ByEndpoint)
      return typename Protocol::endpoint(*it);
    else
      return it;
  }

  auto result_for_end() const
  {
    if constexpr (ByEndpoint)
      return typename Protocol::endpoint();
    else
      return end_;
  }

  basic_socket<Protocol, Executor>& socket_;
  Range range_;
  Iterator iter_;
  Iterator end_;
  ConnectCondition condition_;
  boost::system::error_code last_ec_;
  bool tried_ = false;
};

} // namespace detail

/// Asynchronously connects a socket to the first endpoint of a sequence
/// that accepts a connection (as boost::asio::async_connect).
/**
 * @param s The socket (closed and reopened as needed).
 * @param endpoints A sequence of endpoints (copied), e.g. resolver results.
 * @param token Completion signature
 * @code void(boost::system::error_code, typename Protocol::endpoint) @endcode
 *
 * @par Per-Operation Cancellation
 * Supports terminal and partial cancellation.
 */
template <typename Protocol, typename Executor, typename EndpointSequence,
    typename RangeConnectToken = boost::asio::default_completion_token_t<Executor>>
  requires(bool(boost::asio::is_endpoint_sequence<EndpointSequence>::value))
auto async_connect(basic_socket<Protocol, Executor>& s, const EndpointSequence& endpoints,
    RangeConnectToken&& token = boost::asio::default_completion_token_t<Executor>())
{
  using iterator = decltype(std::declval<const EndpointSequence&>().begin());
  using op = detail::range_connect_op<Protocol, Executor, EndpointSequence, iterator,
      detail::default_connect_condition, true>;
  return boost::asio::async_compose<RangeConnectToken,
      void(boost::system::error_code, typename Protocol::endpoint)>(
      op(s, endpoints, detail::default_connect_condition()), token, s);
}

/// As above, trying only the endpoints connect_condition(ec, endpoint) accepts.
template <typename Protocol, typename Executor, typename EndpointSequence,
    typename ConnectCondition,
    typename RangeConnectToken = boost::asio::default_completion_token_t<Executor>>
  requires(bool(boost::asio::is_endpoint_sequence<EndpointSequence>::value))
auto async_connect(basic_socket<Protocol, Executor>& s, const EndpointSequence& endpoints,
    ConnectCondition connect_condition,
    RangeConnectToken&& token = boost::asio::default_completion_token_t<Executor>())
{
  using iterator = decltype(std::declval<const EndpointSequence&>().begin());
  using op = detail::range_connect_op<Protocol, Executor, EndpointSequence, iterator,
      ConnectCondition, true>;
  return boost::asio::async_compose<RangeConnectToken,
      void(boost::system::error_code, typename Protocol::endpoint)>(
      op(s, endpoints, std::move(connect_condition)), token, s);
}

/// Asynchronously connects to the first endpoint of [begin, end) that
/// accepts; completes with the iterator of that endpoint.
/**
 * @param token Completion signature
 * @code void(boost::system::error_code, Iterator) @endcode
 */
template <typename Protocol, typename Executor, typename Iterator,
    typename IteratorConnectToken = boost::asio::default_completion_token_t<Executor>>
  requires(!bool(boost::asio::is_endpoint_sequence<Iterator>::value))
auto async_connect(basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    IteratorConnectToken&& token = boost::asio::default_completion_token_t<Executor>())
{
  using op = detail::range_connect_op<Protocol, Executor, int, Iterator,
      detail::default_connect_condition, false>;
  return boost::asio::async_compose<IteratorConnectToken,
      void(boost::system::error_code, Iterator)>(
      op(s, begin, end, detail::default_connect_condition()), token, s);
}

template <typename Protocol, typename Executor, typename Iterator, typename ConnectCondition,
    typename IteratorConnectToken = boost::asio::default_completion_token_t<Executor>>
  requires(!bool(boost::asio::is_endpoint_sequence<Iterator>::value))
auto async_connect(basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    ConnectCondition connect_condition,
    IteratorConnectToken&& token = boost::asio::default_completion_token_t<Executor>())
{
  using op = detail::range_connect_op<Protocol, Executor, int, Iterator, ConnectCondition, false>;
  return boost::asio::async_compose<IteratorConnectToken,
      void(boost::system::error_code, Iterator)>(
      op(s, begin, end, std::move(connect_condition)), token, s);
}

/// Connects a socket to the first endpoint of [begin, end) that accepts,
/// blocking; returns its iterator (end with ec set if none).
template <typename Protocol, typename Executor, typename Iterator,
    typename ConnectCondition = detail::default_connect_condition>
  requires(!bool(boost::asio::is_endpoint_sequence<Iterator>::value))
Iterator connect(basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    ConnectCondition connect_condition, boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  bool tried = false;
  for (Iterator it = begin; it != end; ++it)
  {
    if (!connect_condition(ec, *it))
      continue;
    tried = true;
    s.close(ec);
    s.connect(*it, ec);
    if (!ec)
      return it;
  }
  if (!tried)
    ec = boost::asio::error::not_found;
  return end;
}

template <typename Protocol, typename Executor, typename Iterator>
  requires(!bool(boost::asio::is_endpoint_sequence<Iterator>::value))
Iterator connect(basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    boost::system::error_code& ec)
{
  return zokio::connect(s, begin, end, detail::default_connect_condition(), ec);
}

template <typename Protocol, typename Executor, typename Iterator>
  requires(!bool(boost::asio::is_endpoint_sequence<Iterator>::value))
Iterator connect(basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end)
{
  boost::system::error_code ec;
  Iterator it = zokio::connect(s, begin, end, ec);
  boost::asio::detail::throw_error(ec, "connect");
  return it;
}

/// Connects a socket to the first endpoint of a sequence that accepts,
/// blocking; returns that endpoint.
template <typename Protocol, typename Executor, typename EndpointSequence,
    typename ConnectCondition = detail::default_connect_condition>
  requires(bool(boost::asio::is_endpoint_sequence<EndpointSequence>::value))
typename Protocol::endpoint connect(basic_socket<Protocol, Executor>& s,
    const EndpointSequence& endpoints, ConnectCondition connect_condition,
    boost::system::error_code& ec)
{
  auto it = zokio::connect(s, endpoints.begin(), endpoints.end(),
      std::move(connect_condition), ec);
  return ec ? typename Protocol::endpoint() : typename Protocol::endpoint(*it);
}

template <typename Protocol, typename Executor, typename EndpointSequence>
  requires(bool(boost::asio::is_endpoint_sequence<EndpointSequence>::value))
typename Protocol::endpoint connect(basic_socket<Protocol, Executor>& s,
    const EndpointSequence& endpoints, boost::system::error_code& ec)
{
  return zokio::connect(s, endpoints, detail::default_connect_condition(), ec);
}

template <typename Protocol, typename Executor, typename EndpointSequence>
  requires(bool(boost::asio::is_endpoint_sequence<EndpointSequence>::value))
typename Protocol::endpoint connect(basic_socket<Protocol, Executor>& s,
    const EndpointSequence& endpoints)
{
  boost::system::error_code ec;
  auto ep = zokio::connect(s, endpoints, ec);
  boost::asio::detail::throw_error(ec, "connect");
  return ep;
}

} // namespace zokio

namespace boost {
namespace asio {

// The range connect functions of Asio, for zokio sockets (see the top of
// this file).

template <typename Protocol, typename Executor, typename EndpointSequence,
    typename RangeConnectToken = default_completion_token_t<Executor>>
  requires(bool(is_endpoint_sequence<EndpointSequence>::value))
auto async_connect(zokio::basic_socket<Protocol, Executor>& s, const EndpointSequence& endpoints,
    RangeConnectToken&& token = default_completion_token_t<Executor>())
{
  return zokio::async_connect(s, endpoints, std::forward<RangeConnectToken>(token));
}

template <typename Protocol, typename Executor, typename EndpointSequence,
    typename ConnectCondition, typename RangeConnectToken = default_completion_token_t<Executor>>
  requires(bool(is_endpoint_sequence<EndpointSequence>::value))
auto async_connect(zokio::basic_socket<Protocol, Executor>& s, const EndpointSequence& endpoints,
    ConnectCondition connect_condition,
    RangeConnectToken&& token = default_completion_token_t<Executor>())
{
  return zokio::async_connect(s, endpoints, std::move(connect_condition),
      std::forward<RangeConnectToken>(token));
}

template <typename Protocol, typename Executor, typename Iterator,
    typename IteratorConnectToken = default_completion_token_t<Executor>>
  requires(!bool(is_endpoint_sequence<Iterator>::value))
auto async_connect(zokio::basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    IteratorConnectToken&& token = default_completion_token_t<Executor>())
{
  return zokio::async_connect(s, begin, end, std::forward<IteratorConnectToken>(token));
}

template <typename Protocol, typename Executor, typename Iterator, typename ConnectCondition,
    typename IteratorConnectToken = default_completion_token_t<Executor>>
  requires(!bool(is_endpoint_sequence<Iterator>::value))
auto async_connect(zokio::basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    ConnectCondition connect_condition,
    IteratorConnectToken&& token = default_completion_token_t<Executor>())
{
  return zokio::async_connect(s, begin, end, std::move(connect_condition),
      std::forward<IteratorConnectToken>(token));
}

template <typename Protocol, typename Executor, typename EndpointSequence>
  requires(bool(is_endpoint_sequence<EndpointSequence>::value))
typename Protocol::endpoint connect(zokio::basic_socket<Protocol, Executor>& s,
    const EndpointSequence& endpoints)
{
  return zokio::connect(s, endpoints);
}

template <typename Protocol, typename Executor, typename EndpointSequence>
  requires(bool(is_endpoint_sequence<EndpointSequence>::value))
typename Protocol::endpoint connect(zokio::basic_socket<Protocol, Executor>& s,
    const EndpointSequence& endpoints, boost::system::error_code& ec)
{
  return zokio::connect(s, endpoints, ec);
}

template <typename Protocol, typename Executor, typename Iterator>
  requires(!bool(is_endpoint_sequence<Iterator>::value))
Iterator connect(zokio::basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end)
{
  return zokio::connect(s, begin, end);
}

template <typename Protocol, typename Executor, typename Iterator>
  requires(!bool(is_endpoint_sequence<Iterator>::value))
Iterator connect(zokio::basic_socket<Protocol, Executor>& s, Iterator begin, Iterator end,
    boost::system::error_code& ec)
{
  return zokio::connect(s, begin, end, ec);
}

} // namespace asio
} // namespace boost

#endif // ZOKIO_CONNECT_HPP
