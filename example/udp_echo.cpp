// example/udp_echo.cpp: a UDP echo server, and a client that checks it.
//
//   udp_echo server [port]                      echo every datagram back to its sender
//   udp_echo client host port [count [size]]    send count datagrams, check each echo
//
// The server prints "listening on <port>". The client sends datagrams of
// `size` bytes (default 512) one at a time, waits for each echo (with a
// 1 s timeout per datagram: UDP may drop), checks it and exits with status 0
// if every datagram came back intact.
#include <zokio/io_context.hpp>
#include <zokio/ip/udp.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace asio = boost::asio;
using zokio::ip::udp;
using asio::use_awaitable;

namespace {

asio::awaitable<void> serve(udp::socket& socket)
{
  std::vector<char> data(65536);
  for (;;)
  {
    udp::endpoint sender;
    auto [ec, n] = co_await socket.async_receive_from(asio::buffer(data), sender,
        asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted)
      co_return;
    if (ec)
      continue;
    co_await socket.async_send_to(asio::buffer(data.data(), n), sender,
        asio::as_tuple(use_awaitable));
  }
}

int failures = 0;

asio::awaitable<void> check(udp::endpoint server, int count, std::size_t size)
{
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  udp::socket socket(ex, udp::endpoint(server.protocol(), 0));
  zokio::steady_timer timeout(ex);
  std::string out(size, '\0'), in(size + 1, '\0');
  for (int i = 0; i < count; ++i)
  {
    for (std::size_t k = 0; k < size; ++k)
      out[k] = static_cast<char>('A' + (i + k) % 26);
    co_await socket.async_send_to(asio::buffer(out), server, use_awaitable);
    timeout.expires_after(std::chrono::seconds(1));
    udp::endpoint from;
    auto r = co_await (socket.async_receive_from(asio::buffer(in), from, use_awaitable)
        || timeout.async_wait(use_awaitable));
    if (r.index() != 0 || std::get<0>(r) != size || in.compare(0, size, out) != 0)
      ++failures;
  }
}

} // namespace

int main(int argc, char* argv[])
{
  try
  {
    std::string mode = argc > 1 ? argv[1] : "server";
    zokio::io_context ctx(1);
    if (mode == "server")
    {
      unsigned short port = argc > 2 ? static_cast<unsigned short>(std::atoi(argv[2])) : 7002;
      udp::socket socket(ctx, udp::endpoint(udp::v4(), port));
      std::printf("listening on %u\n", socket.local_endpoint().port());
      std::fflush(stdout);
      asio::co_spawn(ctx, serve(socket), asio::detached);
      ctx.run();
      return 0;
    }
    if (mode == "client" && argc > 3)
    {
      int count = argc > 4 ? std::atoi(argv[4]) : 100;
      std::size_t size = argc > 5 ? static_cast<std::size_t>(std::atol(argv[5])) : 512;
      udp::resolver resolver(ctx);
      udp::endpoint server = *resolver.resolve(udp::v4(), argv[2], argv[3]).begin();
      asio::co_spawn(ctx, check(server, count, size), [](std::exception_ptr e) {
        if (e)
          ++failures;
      });
      ctx.run();
      std::printf("%d datagrams, %d lost or wrong\n", count, failures);
      return failures == 0 ? 0 : 1;
    }
    std::fprintf(stderr, "usage: udp_echo server [port] | udp_echo client host port [count [size]]\n");
    return 2;
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "udp_echo: %s\n", e.what());
    return 1;
  }
}
