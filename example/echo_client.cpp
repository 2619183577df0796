// example/echo_client.cpp: checks an echo server.
//
//   echo_client host port [connections [messages [size]]]
//
// Resolves host, opens `connections` connections (default 10) at once, and on
// each sends `messages` messages (default 100) of `size` bytes (default 512),
// checking that every byte comes back. Prints a summary; exits with status 1
// on any error or mismatch.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace asio = boost::asio;
using zokio::ip::tcp;
using asio::use_awaitable;

namespace {

int failures = 0;
long echoed_bytes = 0;

asio::awaitable<void> session(tcp::resolver::results_type endpoints, int id, int messages,
    std::size_t size)
{
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await asio::async_connect(socket, endpoints, use_awaitable);
  socket.set_option(tcp::no_delay(true));
  std::string out(size, '\0'), in(size, '\0');
  for (int m = 0; m < messages; ++m)
  {
    for (std::size_t i = 0; i < size; ++i)
      out[i] = static_cast<char>('a' + (id * 7 + m * 13 + i) % 26);
    co_await asio::async_write(socket, asio::buffer(out), use_awaitable);
    co_await asio::async_read(socket, asio::buffer(in), use_awaitable);
    if (in != out)
      throw std::runtime_error("echo mismatch on connection " + std::to_string(id));
    echoed_bytes += static_cast<long>(size);
  }
}

} // namespace

int main(int argc, char* argv[])
{
  if (argc < 3)
  {
    std::fprintf(stderr, "usage: echo_client host port [connections [messages [size]]]\n");
    return 2;
  }
  int connections = argc > 3 ? std::atoi(argv[3]) : 10;
  int messages = argc > 4 ? std::atoi(argv[4]) : 100;
  std::size_t size = argc > 5 ? static_cast<std::size_t>(std::atol(argv[5])) : 512;

  zokio::io_context ctx;
  tcp::resolver resolver(ctx);
  auto endpoints = resolver.resolve(argv[1], argv[2]);
  auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < connections; ++c)
  {
    asio::co_spawn(ctx, session(endpoints, c, messages, size), [](std::exception_ptr e) {
      if (e)
      {
        ++failures;
        try { std::rethrow_exception(e); }
        catch (const std::exception& x) { std::fprintf(stderr, "echo_client: %s\n", x.what()); }
      }
    });
  }
  ctx.run();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d connections, %ld bytes echoed in %.1f ms, %d failed\n", connections,
      echoed_bytes, ms, failures);
  return failures == 0 ? 0 : 1;
}
