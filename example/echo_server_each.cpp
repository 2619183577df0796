// example/echo_server_each.cpp: a TCP echo server whose connections each
// receive with one async_receive_each loop into a shared buffer pool.
//
//   echo_server_each [port [connections]]
//
// Listens on port (default 7000; 0 picks a free one) on every IPv4 address,
// prints "listening on <port>", and echoes whatever each client sends. A
// connection waiting for data holds no buffer and no pending operation: its
// loop's handler is stored once, and the kernel picks a buffer of the pool
// only when data arrives (io_uring buffer rings; elsewhere a buffer is taken
// when the socket is readable). When all 256 are held by writes in flight,
// the loops wait for one to come back. With `connections` > 0 the server exits once
// that many connections have come and gone (the test uses this).
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <deque>

namespace asio = boost::asio;
using zokio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

long finished = 0;
long stop_after = 0;
zokio::io_context* context = nullptr;

// One connection. Chunks are written back in order: one that arrives while
// the previous one is being written waits in backlog_. The session deletes
// itself once its loop has ended and no write is in flight.
class session
{
public:
  session(tcp::socket socket, zokio::provided_buffer_pool& pool)
    : socket_(std::move(socket)), pool_(pool)
  {
  }

  void start()
  {
    socket_.async_receive_each(pool_, [this](error_code ec, zokio::provided_buffer b) {
      on_chunk(ec, std::move(b));
    });
  }

private:
  void on_chunk(error_code ec, zokio::provided_buffer b)
  {
    if (ec)
    {
      // eof, reset, or the close after a failed write: the loop is over.
      ended_ = true;
      return done_if_idle();
    }
    if (writing_)
      backlog_.push_back(std::move(b));
    else
      write(std::move(b));
  }

  void write(zokio::provided_buffer b)
  {
    writing_ = true;
    auto data = b.buffer();
    // The buffer travels with the write's handler and goes back to the pool
    // when that handler is destroyed.
    asio::async_write(socket_, data, [this, b = std::move(b)](error_code ec, std::size_t) {
      writing_ = false;
      if (ec)
      {
        backlog_.clear();
        socket_.close(ec);  // ends the loop (operation_aborted)
        return;
      }
      if (!backlog_.empty())
      {
        zokio::provided_buffer next = std::move(backlog_.front());
        backlog_.pop_front();
        return write(std::move(next));
      }
      done_if_idle();
    });
  }

  void done_if_idle()
  {
    if (!ended_ || writing_)
      return;
    delete this;
    if (stop_after > 0 && ++finished == stop_after)
      context->stop();
  }

  tcp::socket socket_;
  zokio::provided_buffer_pool& pool_;
  std::deque<zokio::provided_buffer> backlog_;
  bool writing_ = false;
  bool ended_ = false;
};

void accept(tcp::acceptor& acceptor, zokio::provided_buffer_pool& pool)
{
  acceptor.async_accept([&](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted)
      return;
    if (!ec)
    {
      socket.set_option(tcp::no_delay(true), ec);
      (new session(std::move(socket), pool))->start();
    }
    accept(acceptor, pool);  // out of descriptors, aborted connection: keep accepting
  });
}

} // namespace

int main(int argc, char* argv[])
{
  try
  {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 7000;
    stop_after = argc > 2 ? std::atol(argv[2]) : 0;

    zokio::io_context ctx;
    context = &ctx;
    // 256 buffers of 4 KiB for all connections: memory follows the data in
    // flight, not the number of connections.
    zokio::provided_buffer_pool pool(ctx, 4096, 256);
    tcp::acceptor acceptor(ctx, tcp::endpoint(tcp::v4(), port));
    std::printf("listening on %u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    accept(acceptor, pool);
    ctx.run();
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "echo_server_each: %s\n", e.what());
    return 1;
  }
}
