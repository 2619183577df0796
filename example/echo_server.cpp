// example/echo_server.cpp: a TCP echo server with coroutines.
//
//   echo_server [port [threads [connections]]]
//
// Listens on port (default 7000; 0 picks a free one) on every IPv4 address,
// prints "listening on <port>", and echoes whatever each client sends. The
// context runs on `threads` threads (default 1). With `connections` > 0 the
// server exits once that many connections have come and gone (the test uses
// this).
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using zokio::ip::tcp;
using asio::use_awaitable;

namespace {

std::atomic<long> finished{0};
long stop_after = 0;
zokio::io_context* context = nullptr;

asio::awaitable<void> echo(tcp::socket socket)
{
  char data[4096];
  for (;;)
  {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(data), asio::as_tuple(use_awaitable));
    if (ec)
      break; // eof, reset, ...
    auto [wec, m] = co_await asio::async_write(socket, asio::buffer(data, n), asio::as_tuple(use_awaitable));
    if (wec)
      break;
    (void)m;
  }
  if (stop_after > 0 && ++finished == stop_after)
    context->stop();
}

asio::awaitable<void> listen(tcp::acceptor& acceptor)
{
  for (;;)
  {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted)
      co_return;
    if (ec)
      continue; // out of descriptors, aborted connection: keep accepting
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

} // namespace

int main(int argc, char* argv[])
{
  try
  {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 7000;
    int threads = argc > 2 ? std::atoi(argv[2]) : 1;
    stop_after = argc > 3 ? std::atol(argv[3]) : 0;
    if (threads < 1)
      threads = 1;

    zokio::io_context ctx(threads);
    context = &ctx;
    tcp::acceptor acceptor(ctx, tcp::endpoint(tcp::v4(), port));
    std::printf("listening on %u\n", acceptor.local_endpoint().port());
    // Which kernel interface runs the server, and why (io_uring, or epoll
    // where io_uring is refused: zokio/backend.hpp).
    std::printf("backend %s: %s\n", zokio::to_string(ctx.backend()),
        zokio::current_backend().reason.c_str());
    std::fflush(stdout);

    asio::co_spawn(ctx, listen(acceptor), asio::detached);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i)
      pool.emplace_back([&] { ctx.run(); });
    ctx.run();
    for (auto& t : pool)
      t.join();
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
