// Tests of zokio::ip::udp: datagram sockets.
#include <zokio/ip/udp.hpp>

#define BOOST_TEST_MODULE ip_udp
#include <boost/test/unit_test.hpp>

#include <support/net.hpp>
#include <support/run.hpp>

#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <future>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;
using zokio::ip::udp;

//------------------------------------------------------------------------------
// Compile section.

namespace compile {

static_assert(std::is_same_v<udp::endpoint, asio::ip::udp::endpoint>);
static_assert(std::is_same_v<udp::socket::protocol_type, asio::ip::udp>);

struct io_handler
{
  io_handler() = default;
  io_handler(io_handler&&) = default;
  io_handler(const io_handler&) = delete;
  void operator()(error_code, std::size_t) {}
};

[[maybe_unused]] asio::awaitable<void> coroutine(udp::socket& s)
{
  char buf[16];
  udp::endpoint ep;
  std::size_t n = co_await s.async_receive_from(asio::buffer(buf), ep, asio::use_awaitable);
  n += co_await s.async_receive_from(asio::buffer(buf), ep, 0, asio::use_awaitable);
  n += co_await s.async_send_to(asio::buffer(buf), ep, asio::use_awaitable);
  n += co_await s.async_send_to(asio::buffer(buf), ep, 0, asio::use_awaitable);
  n += co_await s.async_receive(asio::buffer(buf), asio::use_awaitable);
  n += co_await s.async_send(asio::buffer(buf), asio::use_awaitable);
  auto [ec, m] = co_await s.async_receive(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
  error_code ec2;
  co_await s.async_send(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec2));
  co_await s.async_receive_from(asio::buffer(buf), ep, asio::deferred);
  (void)ec;
  (void)m;
  (void)n;
}

[[maybe_unused]] void interface(zokio::io_context& ctx)
{
  udp::socket s1(ctx);
  udp::socket s2(ctx, udp::v4());
  udp::socket s3(ctx, udp::endpoint(udp::v4(), 0));
  udp::socket s4(ctx.get_executor());
  s1 = std::move(s2);
  char buf[16];
  std::array<asio::mutable_buffer, 2> bufs{asio::buffer(buf, 8), asio::buffer(buf + 8, 8)};
  std::array<asio::const_buffer, 2> cbufs{asio::buffer(buf, 8), asio::buffer(buf + 8, 8)};
  udp::endpoint ep;
  s1.async_send(asio::buffer(buf), io_handler());
  s1.async_send(cbufs, 0, io_handler());
  s1.async_send_to(asio::buffer(buf), ep, io_handler());
  s1.async_send_to(cbufs, ep, 0, io_handler());
  s1.async_receive(asio::buffer(buf), io_handler());
  s1.async_receive(bufs, 0, io_handler());
  s1.async_receive_from(asio::buffer(buf), ep, io_handler());
  s1.async_receive_from(bufs, ep, 0, io_handler());
  s1.async_connect(ep, [](error_code) {});
  s1.async_wait(udp::socket::wait_read, [](error_code) {});
  std::future<std::size_t> f = s1.async_receive(asio::buffer(buf), asio::use_future);
  s1.async_send(asio::buffer(buf), asio::as_tuple([](std::tuple<error_code, std::size_t>) {}));
  asio::co_spawn(ctx, coroutine(s1), asio::detached);
  error_code ec;
  (void)s1.send(asio::buffer(buf));
  (void)s1.send(asio::buffer(buf), 0, ec);
  (void)s1.send_to(asio::buffer(buf), ep);
  (void)s1.send_to(asio::buffer(buf), ep, 0, ec);
  (void)s1.receive(asio::buffer(buf));
  (void)s1.receive(asio::buffer(buf), 0, ec);
  (void)s1.receive_from(asio::buffer(buf), ep);
  (void)s1.receive_from(asio::buffer(buf), ep, 0, ec);
  s1.set_option(udp::socket::broadcast(true), ec);
}

} // namespace compile

//------------------------------------------------------------------------------
// Runtime section.

namespace {

udp::endpoint loopback(unsigned short port = 0)
{
  return {asio::ip::address_v4::loopback(), port};
}

std::string pattern(std::size_t n)
{
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(protocol_values_as_with_asio)
{
  udp v4 = udp::v4();
  udp v6 = udp::v6();
  BOOST_TEST(v4.family() == AF_INET);
  BOOST_TEST(v6.family() == AF_INET6);
  BOOST_TEST(v4.type() == SOCK_DGRAM);
  BOOST_TEST((v4 != v6));
  zokio::io_context ctx;
  udp::socket s(ctx, v4);
  BOOST_TEST(s.is_open());
  BOOST_TEST((s.local_endpoint().protocol() == v4));
}

BOOST_AUTO_TEST_CASE(datagrams_of_one_byte_and_64_kib)
{
  // 65507 = 65535 - 20 (IPv4 header) - 8 (UDP header): the largest payload.
  zokio::io_context ctx;
  udp::socket a(ctx, loopback()), b(ctx, loopback());
  b.set_option(udp::socket::receive_buffer_size(1 << 20));
  for (std::size_t size : {std::size_t(1), std::size_t(65507)})
  {
    std::string out = pattern(size), in(65536, '\0');
    udp::endpoint from;
    std::size_t got = 0;
    b.async_receive_from(asio::buffer(in), from, [&](error_code ec, std::size_t n) {
      BOOST_TEST(!ec, ec.message());
      got = n;
    });
    a.async_send_to(asio::buffer(out), b.local_endpoint(), [&](error_code ec, std::size_t n) {
      BOOST_TEST(!ec, ec.message());
      BOOST_TEST(n == size);
    });
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(got == size);
    BOOST_TEST((in.compare(0, size, out) == 0));
    BOOST_TEST((from == a.local_endpoint()));
  }
  // One more byte than fits is refused.
  std::string too_big(65508, 'x');
  error_code ec;
  a.send_to(asio::buffer(too_big), b.local_endpoint(), 0, ec);
  BOOST_TEST((ec == asio::error::message_size));
}

BOOST_AUTO_TEST_CASE(zero_length_and_vectored_datagrams)
{
  zokio::io_context ctx;
  udp::socket a(ctx, loopback()), b(ctx, loopback());
  a.connect(b.local_endpoint());
  b.connect(a.local_endpoint());
  std::vector<std::size_t> sizes;
  std::string p1 = pattern(100), p2 = pattern(300);
  std::array<asio::const_buffer, 2> out{asio::buffer(p1), asio::buffer(p2)};
  std::string r1(50, '\0'), r2(1000, '\0');
  std::array<asio::mutable_buffer, 2> in{asio::buffer(r1), asio::buffer(r2)};
  a.async_send(asio::const_buffer(), [](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 0u);
  });
  a.async_send(out, [](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 400u);
  });
  char dummy[8];
  b.async_receive(asio::buffer(dummy), [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec); // a zero-length datagram is not end of stream
    sizes.push_back(n);
    b.async_receive(in, [&](error_code ec, std::size_t n) {
      BOOST_TEST(!ec);
      sizes.push_back(n);
    });
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(sizes == (std::vector<std::size_t>{0, 400}), boost::test_tools::per_element());
  BOOST_TEST(((r1 + r2.substr(0, 350)) == (p1 + p2)));
}

BOOST_AUTO_TEST_CASE(synchronous_send_and_receive)
{
  zokio::io_context ctx;
  udp::socket a(ctx, loopback()), b(ctx, loopback());
  BOOST_TEST(a.send_to(asio::buffer("ping", 4), b.local_endpoint()) == 4u);
  char buf[8];
  udp::endpoint from;
  BOOST_TEST(b.receive_from(asio::buffer(buf), from) == 4u);
  BOOST_TEST((from == a.local_endpoint()));
  b.non_blocking(true);
  error_code ec;
  b.receive_from(asio::buffer(buf), from, 0, ec);
  BOOST_TEST((ec == asio::error::would_block));
}

BOOST_AUTO_TEST_CASE(operations_on_a_closed_socket_fail_with_bad_descriptor)
{
  // Never opened, and opened then closed: every receive, send and wait
  // fails with bad_descriptor, through the executor (never inside the call).
  zokio::io_context ctx;
  for (bool was_open : {false, true})
  {
    udp::socket s(ctx);
    if (was_open)
    {
      s.open(udp::v4());
      s.bind(loopback());
      s.close();
    }
    char buf[4] = {};
    udp::endpoint from;
    std::vector<error_code> results;
    auto record = [&](error_code ec, std::size_t n) {
      results.push_back(ec);
      BOOST_TEST(n == 0u);
    };
    s.async_receive(asio::buffer(buf), record);
    s.async_receive_from(asio::buffer(buf), from, record);
    s.async_send(asio::buffer(buf), record);
    s.async_send_to(asio::buffer(buf), loopback(9), record);
    s.async_wait(udp::socket::wait_read, [&](error_code ec) { record(ec, 0); });
    BOOST_TEST(results.empty());
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(results.size() == 5u);
    for (auto& ec : results)
      BOOST_TEST((ec == asio::error::bad_descriptor), "was open " << was_open << ": " << ec.message());
  }
}

BOOST_AUTO_TEST_CASE(completion_tokens_on_send_to_and_receive_from)
{
  // use_future, deferred, as_tuple and redirect_error at run time on
  // async_send_to and async_receive_from: sizes, data, sender and errors.
  zokio::io_context ctx;
  udp::socket a(ctx, loopback()), b(ctx, loopback()), closed(ctx);
  char buf[16];
  udp::endpoint from;
  auto got = [&](std::size_t n) { return std::string(buf, n); };

  // use_future
  std::future<std::size_t> received = b.async_receive_from(asio::buffer(buf), from, asio::use_future);
  std::future<std::size_t> sent = a.async_send_to(asio::buffer("future", 6), b.local_endpoint(), asio::use_future);
  std::future<std::size_t> bad = closed.async_send_to(asio::buffer("x", 1), b.local_endpoint(), asio::use_future);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(sent.get() == 6u);
  BOOST_TEST(got(received.get()) == "future");
  BOOST_TEST((from == a.local_endpoint()));
  BOOST_CHECK_EXCEPTION(bad.get(), boost::system::system_error,
      [](const boost::system::system_error& e) { return e.code() == asio::error::bad_descriptor; });

  // deferred: launched later, the send from the receive's completion.
  {
    auto receive_op = b.async_receive_from(asio::buffer(buf), from, 0, asio::deferred);
    auto send_op = a.async_send_to(asio::buffer("deferred", 8), b.local_endpoint(), 0, asio::deferred);
    std::size_t n_sent = 0, n_received = 0;
    error_code send_ec = asio::error::would_block, receive_ec = asio::error::would_block;
    std::move(receive_op)([&](error_code ec, std::size_t n) {
      receive_ec = ec;
      n_received = n;
    });
    asio::post(ctx, [&] {
      std::move(send_op)([&](error_code ec, std::size_t n) {
        send_ec = ec;
        n_sent = n;
      });
    });
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!send_ec);
    BOOST_TEST(!receive_ec);
    BOOST_TEST(n_sent == 8u);
    BOOST_TEST(got(n_received) == "deferred");
  }

  // as_tuple
  {
    std::tuple<error_code, std::size_t> sent_r{asio::error::would_block, 0}, received_r, bad_r;
    b.async_receive_from(asio::buffer(buf), from, asio::as_tuple([&](std::tuple<error_code, std::size_t> r) {
      received_r = r;
    }));
    a.async_send_to(asio::buffer("tuple", 5), b.local_endpoint(), asio::as_tuple([&](std::tuple<error_code, std::size_t> r) {
      sent_r = r;
    }));
    closed.async_receive_from(asio::buffer(buf), from, asio::as_tuple([&](std::tuple<error_code, std::size_t> r) {
      bad_r = r;
    }));
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!std::get<0>(sent_r));
    BOOST_TEST(std::get<1>(sent_r) == 5u);
    BOOST_TEST(!std::get<0>(received_r));
    BOOST_TEST(got(std::get<1>(received_r)) == "tuple");
    BOOST_TEST((std::get<0>(bad_r) == asio::error::bad_descriptor));
  }

  // redirect_error, callbacks and awaitables
  {
    error_code send_ec = asio::error::would_block, receive_ec = asio::error::would_block, bad_ec;
    std::size_t n_sent = 0, n_received = 0;
    b.async_receive_from(asio::buffer(buf), from, asio::redirect_error([&](std::size_t n) { n_received = n; }, receive_ec));
    a.async_send_to(asio::buffer("redirect", 8), b.local_endpoint(), asio::redirect_error([&](std::size_t n) { n_sent = n; }, send_ec));
    closed.async_send_to(asio::buffer("x", 1), b.local_endpoint(), asio::redirect_error([](std::size_t) {}, bad_ec));
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!send_ec);
    BOOST_TEST(!receive_ec);
    BOOST_TEST(n_sent == 8u);
    BOOST_TEST(got(n_received) == "redirect");
    BOOST_TEST((bad_ec == asio::error::bad_descriptor));

    error_code aw_send = asio::error::would_block, aw_receive = asio::error::would_block, aw_bad;
    std::size_t aw_n = 0;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
      co_await a.async_send_to(asio::buffer("awaited", 7), b.local_endpoint(),
          asio::redirect_error(asio::use_awaitable, aw_send));
      aw_n = co_await b.async_receive_from(asio::buffer(buf), from,
          asio::redirect_error(asio::use_awaitable, aw_receive));
      co_await closed.async_receive_from(asio::buffer(buf), from,
          asio::redirect_error(asio::use_awaitable, aw_bad));
    }, asio::detached);
    ctx.restart();
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!aw_send);
    BOOST_TEST(!aw_receive);
    BOOST_TEST(got(aw_n) == "awaited");
    BOOST_TEST((from == a.local_endpoint()));
    BOOST_TEST((aw_bad == asio::error::bad_descriptor));
  }
}

BOOST_AUTO_TEST_CASE(cancel_and_close_abort_receives)
{
  zokio::io_context ctx;
  udp::socket a(ctx, loopback());
  char buf[8];
  udp::endpoint from;
  std::vector<error_code> results;
  a.async_receive_from(asio::buffer(buf), from, [&](error_code ec, std::size_t) { results.push_back(ec); });
  a.async_receive(asio::buffer(buf), [&](error_code ec, std::size_t) { results.push_back(ec); });
  asio::post(ctx, [&] { a.cancel(); });
  zokio_test::run_bounded(ctx);
  a.async_receive(asio::buffer(buf), [&](error_code ec, std::size_t) { results.push_back(ec); });
  asio::post(ctx, [&] { a.close(); });
  ctx.restart();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(results.size() == 3u);
  for (auto& ec : results)
    BOOST_TEST((ec == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(per_operation_cancellation_and_awaitable_operators)
{
  zokio::io_context ctx;
  udp::socket a(ctx, loopback());
  zokio::steady_timer timer(ctx);
  std::size_t winner = 99;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    char buf[8];
    udp::endpoint from;
    timer.expires_after(5ms);
    auto r = co_await (a.async_receive_from(asio::buffer(buf), from, asio::use_awaitable)
        || timer.async_wait(asio::use_awaitable));
    winner = r.index();
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(winner == 1u);

  asio::cancellation_signal signal;
  error_code result;
  char buf[8];
  a.async_receive(asio::buffer(buf), asio::bind_cancellation_slot(signal.slot(),
      [&](error_code ec, std::size_t) { result = ec; }));
  signal.emit(asio::cancellation_type::total);
  ctx.restart();
  zokio_test::run_bounded(ctx);
  BOOST_TEST((result == asio::error::operation_aborted));
}

namespace {

// One datagram each way between a and peer; returns what each received
// first, "a<-" then "peer<-" (empty when a receive failed).
std::pair<std::string, std::string> round_trip(zokio::io_context& ctx, udp::socket& a, udp::socket& peer)
{
  std::string at_a, at_peer;
  char buf_a[64], buf_peer[64];
  udp::endpoint from_a, from_peer;
  a.async_receive_from(asio::buffer(buf_a), from_a, [&](error_code ec, std::size_t n) {
    if (!ec)
      at_a.assign(buf_a, n);
  });
  peer.async_receive_from(asio::buffer(buf_peer), from_peer, [&](error_code ec, std::size_t n) {
    if (!ec)
      at_peer.assign(buf_peer, n);
  });
  a.async_send_to(asio::buffer("to peer", 7), peer.local_endpoint(), [](error_code, std::size_t) {});
  peer.async_send_to(asio::buffer("to a", 4), a.local_endpoint(), [](error_code, std::size_t) {});
  ctx.restart();
  zokio_test::run_bounded(ctx);
  return {at_a, at_peer};
}

} // namespace

// Receives (with and without the sender's endpoint) and sends (connected
// and to an endpoint), every cancellation type, at three stages: before
// reaching a ring (initiated outside the run loop), queued (SQE prepared,
// not yet submitted) and in the kernel. Each completes once with
// operation_aborted and the socket carries datagrams both ways afterwards;
// an aborted send sent nothing.
//
// Sends are cancelled before they reach a ring only: on loopback a UDP send
// never waits (loopback_xmit orphans the skb, so the send buffer never
// fills, and a full receive queue drops the datagram instead of blocking the
// sender): a queued or submitted send completes at once, with its bytes.
BOOST_AUTO_TEST_CASE(per_operation_cancellation_every_kind_and_stage)
{
  using asio::cancellation_type;
  enum class kind { receive, receive_from, send, send_to };
  const char* kind_names[] = {"receive", "receive_from", "send", "send_to"};
  int checked = 0;
  for (kind k : {kind::receive, kind::receive_from, kind::send, kind::send_to})
  {
    const bool sending = k == kind::send || k == kind::send_to;
    for (auto type : {cancellation_type::terminal, cancellation_type::partial, cancellation_type::total})
    {
      for (auto when : zokio_test::cancel_stages)
      {
        if (sending && when != zokio_test::cancel_stage::not_on_a_ring)
          continue;
        zokio::io_context ctx;
        udp::socket a(ctx, loopback()), peer(ctx, loopback());
        a.connect(peer.local_endpoint());
        char buf[8];
        udp::endpoint from;
        asio::cancellation_signal signal;
        error_code result = asio::error::would_block;
        int calls = 0;
        auto start = [&] {
          auto h = asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, std::size_t) {
            result = ec;
            ++calls;
          });
          switch (k)
          {
          case kind::receive:
            a.async_receive(asio::buffer(buf), std::move(h));
            break;
          case kind::receive_from:
            a.async_receive_from(asio::buffer(buf), from, std::move(h));
            break;
          case kind::send:
            a.async_send(asio::buffer("aborted", 7), std::move(h));
            break;
          case kind::send_to:
            a.async_send_to(asio::buffer("aborted", 7), peer.local_endpoint(), std::move(h));
            break;
          }
        };
        zokio_test::start_and_cancel(ctx, when, start, [&] { signal.emit(type); });
        BOOST_TEST((result == asio::error::operation_aborted),
            kind_names[static_cast<int>(k)] << " type " << static_cast<int>(type) << " stage "
            << static_cast<int>(when) << ": " << result.message());
        BOOST_TEST(calls == 1);
        auto [at_a, at_peer] = round_trip(ctx, a, peer);
        BOOST_TEST(at_a == "to a");
        BOOST_TEST(at_peer == "to peer"); // not "aborted"
        ++checked;
      }
    }
  }
  BOOST_TEST(checked == 2 * 3 * 3 + 2 * 3);
}

BOOST_AUTO_TEST_CASE(ipv6_datagrams, *boost::unit_test::precondition(zokio_test::ipv6_loopback))
{
  zokio::io_context ctx;
  udp::socket a(ctx);
  error_code ec;
  a.open(udp::v6(), ec);
  if (!ec)
    a.bind(udp::endpoint(asio::ip::address_v6::loopback(), 0), ec);
  if (ec)
  {
    BOOST_TEST_MESSAGE("skipped: no IPv6 loopback (" << ec.message() << ")");
    return;
  }
  udp::socket b(ctx, udp::endpoint(asio::ip::address_v6::loopback(), 0));
  std::string got;
  char buf[16];
  udp::endpoint from;
  b.async_receive_from(asio::buffer(buf), from, [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    got.assign(buf, n);
  });
  a.async_send_to(asio::buffer("v6", 2), b.local_endpoint(), [](error_code ec, std::size_t) { BOOST_TEST(!ec); });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(got == "v6");
  BOOST_TEST(from.address().is_v6());
}
