// HTTP "hello" server over Boost.Beast for the Asio-shaped runtimes (zokio,
// asio_epoll, asio_uring): one source, three binaries; see runtime.hpp.
//
//   http_server --port P
//
// The idiomatic Beast callback form: an accept loop, and per connection a
// session that reads a request (http::async_read into a flat_buffer), answers
// "Hello, world!" with keep-alive, and reads the next request. One thread runs
// the context. Driven by wrk (perf/report/runner.py, scenario http_hello).
//
// SIGTERM or SIGINT stops the context; the server then prints the context's
// statistics as one JSON object on stdout ({} for Asio) and exits.
#include "runtime.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <csignal>
#include <memory>
#include <thread>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = rt::ip::tcp;

class session : public std::enable_shared_from_this<session> {
public:
  explicit session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read(); }

private:
  void read() {
    request_ = {};
    http::async_read(socket_, buffer_, request_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       if (!ec) self->respond();
                     });
  }

  void respond() {
    response_ = {};
    response_.result(http::status::ok);
    response_.version(request_.version());
    response_.set(http::field::server, perf::runtime_name);
    response_.set(http::field::content_type, "text/plain");
    response_.body() = "Hello, world!";
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    http::async_write(socket_, response_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return;
                        if (self->response_.keep_alive()) {
                          self->read();
                        } else {
                          self->socket_.shutdown(tcp::socket::shutdown_send, ec);
                        }
                      });
  }

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response<http::string_body> response_;
};

class server {
public:
  server(rt::io_context& ctx, unsigned short port)
      : acceptor_(ctx, tcp::endpoint(perf::asio::ip::make_address("127.0.0.1"), port)) {
    accept();
  }

private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<session>(std::move(socket))->start();
      } else if (ec == perf::asio::error::operation_aborted) {
        return;
      }
      accept();
    });
  }

  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  const auto port = static_cast<unsigned short>(o.num("port", 8080));

  // Signals are taken by a helper thread (sigwait) that posts the stop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  rt::io_context ctx;
  server s(ctx, port);
  auto guard = perf::asio::make_work_guard(ctx);
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    perf::asio::post(ctx, [&] { ctx.stop(); });
  });
  stopper.detach();
  std::fprintf(stderr, "%s http server on 127.0.0.1:%u\n", perf::runtime_name, port);
  ctx.run();
  perf::json_line().add("runtime", perf::runtime_name)
      .raw("stats", perf::context_statistics(ctx)).print();
  std::_Exit(0);  // sessions are left to the OS
}
