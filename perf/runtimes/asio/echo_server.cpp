// TCP echo server for the Asio-shaped runtimes (zokio, asio_epoll, asio_uring):
// one source, three binaries; see runtime.hpp. A fourth, zokio_asio
// (PERF_ASIO_SOCKETS), keeps Asio's own sockets (boost::asio::ip::tcp) and
// only swaps the context for zokio::io_context.
//
//   echo_server --port P [--buf BYTES] [--threads T [--pool 1]] [--provided N [--each 1]]
//
// The idiomatic callback form: an accept loop, and per connection a session
// that reads what is there (async_read_some into its own buffer) and writes it
// back (async_write), then reads again. One thread runs the context by
// default; --threads T runs it on T threads; --pool 1 serves on a thread pool
// of T workers instead (zokio::thread_pool or asio::thread_pool).
//
// --provided N (zokio only): sessions receive with async_receive_provided
// into a zokio::provided_buffer_pool of N buffers of --buf bytes, shared by
// all connections, so an idle connection holds no buffer (with the kernel's
// buffer rings; see zokio/provided_buffer_pool.hpp). A session then owns
// only its socket. With --each 1 a session receives with one
// async_receive_each loop (a handler stored once, called per chunk) instead
// of one async_receive_provided per message; writes are async_write as in
// the other modes.
//
// SIGTERM or SIGINT stops the context; the server then prints the context's
// statistics as one JSON object on stdout ({} for Asio) and exits.
#include "runtime.hpp"

#include <csignal>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

#if defined(PERF_ASIO_SOCKETS)
using tcp = boost::asio::ip::tcp;
#else
using tcp = rt::ip::tcp;
#endif

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, std::size_t buf)
      : socket_(std::move(socket)), data_(new char[buf]), size_(buf) {}

  void start() { read(); }

private:
  void read() {
    socket_.async_read_some(perf::asio::buffer(data_.get(), size_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }
  void write(std::size_t n) {
    perf::asio::async_write(socket_, perf::asio::buffer(data_.get(), n),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                              if (!ec) self->read();
                            });
  }

  tcp::socket socket_;
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

// --provided: zokio's own sockets only (not the build with Asio's sockets on
// a zokio context).
#if defined(PERF_RUNTIME_ZOKIO) && !defined(PERF_ASIO_SOCKETS)
#define PERF_PROVIDED_BUFFERS 1
#endif

#if defined(PERF_PROVIDED_BUFFERS)
// The session of --provided: receive into a pool buffer, write it back,
// release it (when the write's handler is destroyed), receive again.
class provided_session : public std::enable_shared_from_this<provided_session> {
public:
  provided_session(tcp::socket socket, zokio::provided_buffer_pool& pool)
      : socket_(std::move(socket)), pool_(pool) {}

  void start() { read(); }

private:
  void read() {
    socket_.async_receive_provided(
        pool_, [self = shared_from_this()](boost::system::error_code ec, zokio::provided_buffer b) {
          if (!ec) return self->write(std::move(b));
          // Every buffer is in use: try again after the handlers queued now.
          if (ec == perf::asio::error::no_buffer_space)
            perf::asio::post(self->socket_.get_executor(), [self] { self->read(); });
        });
  }
  void write(zokio::provided_buffer b) {
    auto data = b.buffer();
    perf::asio::async_write(socket_, data,
                            [self = shared_from_this(), b = std::move(b)](boost::system::error_code ec,
                                                                         std::size_t) {
                              if (!ec) self->read();
                            });
  }

  tcp::socket socket_;
  zokio::provided_buffer_pool& pool_;
};

// The session of --each: one receive loop for the connection's life. Chunks
// that arrive while a write is in flight wait in a backlog and leave
// together in the next write (one gathered async_write: the loop receives
// ahead, so with several messages in flight several chunks wait); the
// backlog is made the first time it is needed and kept. The session deletes
// itself once the loop has ended and no write is in flight. Its socket
// carries the context's own executor (one pointer), so an idle connection
// is the socket state, the loop and this small object.
template <class Socket>
class each_session {
public:
  each_session(Socket socket, zokio::provided_buffer_pool& pool)
      : socket_(std::move(socket)), pool_(pool) {}

  void start() {
    socket_.async_receive_each(pool_, [this](boost::system::error_code ec, zokio::provided_buffer b) {
      on_chunk(ec, std::move(b));
    });
  }

private:
  struct backlog {
    std::vector<zokio::provided_buffer> waiting;  // arrived during the write
    std::vector<zokio::provided_buffer> sending;  // in the gathered write
    std::vector<boost::asio::const_buffer> sequence;
  };

  void on_chunk(boost::system::error_code ec, zokio::provided_buffer b) {
    if (ec) {
      ended_ = true;
      if (!writing_) delete this;
      return;
    }
    if (!writing_) return write_one(std::move(b));
    if (!backlog_) backlog_ = std::make_unique<backlog>();
    backlog_->waiting.push_back(std::move(b));
  }
  void write_one(zokio::provided_buffer b) {
    writing_ = true;
    auto data = b.buffer();
    perf::asio::async_write(socket_, data,
                            [this, b = std::move(b)](boost::system::error_code ec, std::size_t) mutable {
                              b.release();
                              written(ec);
                            });
  }
  void write_backlog() {
    writing_ = true;
    backlog& q = *backlog_;
    q.sending.swap(q.waiting);
    q.sequence.clear();
    for (auto& b : q.sending) q.sequence.push_back(b.buffer());
    perf::asio::async_write(socket_, q.sequence, [this](boost::system::error_code ec, std::size_t) {
      backlog_->sending.clear();  // the buffers go back to the pool
      written(ec);
    });
  }
  void written(boost::system::error_code ec) {
    writing_ = false;
    if (ec) {
      backlog_.reset();
      socket_.close(ec);  // ends the loop
    } else if (backlog_ && !backlog_->waiting.empty()) {
      return write_backlog();
    }
    if (ended_) delete this;
  }

  Socket socket_;
  zokio::provided_buffer_pool& pool_;
  std::unique_ptr<backlog> backlog_;
  bool writing_ = false;
  bool ended_ = false;
};
#endif

class server {
public:
  template <class Context>
  server(Context& ctx, unsigned short port, std::size_t buf, std::size_t provided = 0,
         bool each = false)
      : acceptor_(ctx, tcp::endpoint(perf::asio::ip::make_address("127.0.0.1"), port)), buf_(buf),
        each_(each) {
#if defined(PERF_PROVIDED_BUFFERS)
    if (provided) pool_.emplace(ctx, buf, provided);
#else
    if (provided) throw std::runtime_error("--provided needs zokio's own sockets");
#endif
#if defined(PERF_PROVIDED_BUFFERS)
    if (pool_ && each_) {
      accept_each(ctx.get_executor());
      return;
    }
#endif
    accept();
  }

private:
#if defined(PERF_PROVIDED_BUFFERS)
  // --each: sockets made on the context's executor type.
  template <class Executor>
  void accept_each(Executor ex) {
    acceptor_.async_accept(ex, [this, ex](boost::system::error_code ec, auto socket) {
      if (ec == perf::asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        (new each_session<decltype(socket)>(std::move(socket), *pool_))->start();
      }
      accept_each(ex);
    });
  }
#endif

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
#if defined(PERF_PROVIDED_BUFFERS)
        if (pool_) {
          std::make_shared<provided_session>(std::move(socket), *pool_)->start();
          return accept();
        }
#endif
        std::make_shared<session>(std::move(socket), buf_)->start();
      } else if (ec == perf::asio::error::operation_aborted) {
        return;
      }
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::size_t buf_;
  bool each_;
#if defined(PERF_PROVIDED_BUFFERS)
  std::optional<zokio::provided_buffer_pool> pool_;
#endif
};

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  const auto port = static_cast<unsigned short>(o.num("port", 7000));
  const auto buf = std::size_t(o.num("buf", 4096));
  const auto provided = std::size_t(o.num("provided", 0));
  const bool each = o.num("each", 0) != 0;
  if (each && provided == 0) throw std::runtime_error("--each needs --provided N");

  // Signals are taken by a helper thread (sigwait) that posts the stop; every
  // other thread has them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const auto threads = unsigned(o.num("threads", 1));
  if (o.num("pool", 0) != 0) {
    // The pool's workers run from construction; the main thread waits for
    // the signal and stops it.
    rt::thread_pool pool(threads);
    server s(pool, port, buf, provided, each);
    std::fprintf(stderr, "%s echo server on 127.0.0.1:%u (pool of %u)\n", perf::runtime_name, port,
                 threads);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    pool.stop();
    pool.join();
    perf::json_line().add("runtime", perf::runtime_name)
        .raw("stats", perf::context_statistics(pool)).print();
    std::_Exit(0);
  }

  rt::io_context ctx;
  server s(ctx, port, buf, provided, each);
  auto guard = perf::asio::make_work_guard(ctx);
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    perf::asio::post(ctx, [&] { ctx.stop(); });
  });
  stopper.detach();
  std::fprintf(stderr, "%s echo server on 127.0.0.1:%u (%u thread%s)\n", perf::runtime_name, port,
               threads, threads == 1 ? "" : "s");
  std::vector<std::thread> others;
  for (unsigned i = 1; i < threads; ++i) others.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : others) t.join();
  perf::json_line().add("runtime", perf::runtime_name)
      .raw("stats", perf::context_statistics(ctx)).print();
  std::_Exit(0);  // sessions are left to the OS
}
