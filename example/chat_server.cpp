// example/chat_server.cpp: a line-based chat room.
//
//   chat_server [port [rooms_close_after]]
//
// Every line a client sends is delivered to every other client connected at
// that moment, prefixed with the sender's number ("3: hello"). Each client
// has a reader coroutine and a writer coroutine; the writer sleeps on a timer
// that the room cancels when there is something to send (the usual Asio
// idiom for a coroutine condition variable). With rooms_close_after > 0 the
// server exits after that many clients have left.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/timer/steady_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <set>
#include <string>

namespace asio = boost::asio;
using zokio::ip::tcp;
using asio::use_awaitable;

namespace {

class participant
{
public:
  virtual ~participant() = default;
  virtual void deliver(const std::string& line) = 0;
};

class room
{
public:
  void join(participant* p) { members_.insert(p); }
  void leave(participant* p) { members_.erase(p); }

  void broadcast(participant* from, const std::string& line)
  {
    for (participant* p : members_)
      if (p != from)
        p->deliver(line);
  }

private:
  std::set<participant*> members_;
};

class session : public participant, public std::enable_shared_from_this<session>
{
public:
  session(tcp::socket socket, room& r, int id)
    : socket_(std::move(socket)), signal_(socket_.get_executor()), room_(r), id_(id)
  {
    signal_.expires_at(zokio::steady_timer::time_point::max());
  }

  void start()
  {
    room_.join(this);
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), [self] { return self->reader(); }, asio::detached);
    asio::co_spawn(socket_.get_executor(), [self] { return self->writer(); }, asio::detached);
  }

  void deliver(const std::string& line) override
  {
    outbox_.push_back(line);
    signal_.cancel_one();
  }

private:
  asio::awaitable<void> reader()
  {
    std::string buffer;
    for (;;)
    {
      auto [ec, n] = co_await asio::async_read_until(socket_, asio::dynamic_buffer(buffer, 4096),
          '\n', asio::as_tuple(use_awaitable));
      if (ec)
        break;
      room_.broadcast(this, std::to_string(id_) + ": " + buffer.substr(0, n));
      buffer.erase(0, n);
    }
    stop();
  }

  asio::awaitable<void> writer()
  {
    while (socket_.is_open())
    {
      if (outbox_.empty())
      {
        boost::system::error_code ec;
        co_await signal_.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(outbox_.front()),
          asio::as_tuple(use_awaitable));
      if (ec)
        break;
      outbox_.pop_front();
    }
    stop();
  }

  void stop()
  {
    if (!socket_.is_open())
      return;
    room_.leave(this);
    socket_.close();
    signal_.cancel();
    on_leave();
  }

  static void on_leave();

  tcp::socket socket_;
  zokio::steady_timer signal_;
  room& room_;
  int id_;
  std::deque<std::string> outbox_;
};

long close_after = 0;
long left = 0;
zokio::io_context* context = nullptr;

void session::on_leave()
{
  if (close_after > 0 && ++left == close_after)
    context->stop();
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, room& r)
{
  for (int id = 1;; ++id)
  {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted)
      co_return;
    if (!ec)
      std::make_shared<session>(std::move(socket), r, id)->start();
  }
}

} // namespace

int main(int argc, char* argv[])
{
  try
  {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 7001;
    close_after = argc > 2 ? std::atol(argv[2]) : 0;
    zokio::io_context ctx(1);
    context = &ctx;
    tcp::acceptor acceptor(ctx, tcp::endpoint(tcp::v4(), port));
    std::printf("listening on %u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    room r;
    asio::co_spawn(ctx, listen(acceptor, r), asio::detached);
    ctx.run();
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "chat_server: %s\n", e.what());
    return 1;
  }
}
