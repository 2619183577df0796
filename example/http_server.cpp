// example/http_server.cpp: an HTTP/1.1 server with Boost.Beast over zokio
// sockets.
//
//   http_server [port [doc_root [threads]]]
//
// GET / answers a fixed text; GET /files/<path> serves the file <path> under
// doc_root (default: the current directory); anything else is 404.
// Connections are kept alive as the client asks. One coroutine per
// connection: beast::http::async_read and async_write work directly on a
// zokio::ip::tcp::socket.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using zokio::ip::tcp;
using asio::use_awaitable;

namespace {

const char* mime_type(const std::string& path)
{
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  if (ext == ".html" || ext == ".htm")
    return "text/html";
  if (ext == ".txt")
    return "text/plain";
  if (ext == ".css")
    return "text/css";
  if (ext == ".js")
    return "application/javascript";
  if (ext == ".json")
    return "application/json";
  if (ext == ".png")
    return "image/png";
  return "application/octet-stream";
}

template <typename Body>
http::response<Body> make_response(const http::request<http::string_body>& req, http::status s)
{
  http::response<Body> res{s, req.version()};
  res.set(http::field::server, "zokio http_server");
  res.keep_alive(req.keep_alive());
  return res;
}

asio::awaitable<void> serve(tcp::socket socket, std::string doc_root)
{
  beast::flat_buffer buffer;
  for (;;)
  {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(socket, buffer, req, asio::as_tuple(use_awaitable));
    if (ec)
      break; // end_of_stream, reset, bad request
    std::string target(req.target());
    bool keep_alive = req.keep_alive();

    if (req.method() == http::verb::get && target.rfind("/files/", 0) == 0
        && target.find("..") == std::string::npos)
    {
      std::string path = doc_root + "/" + target.substr(7);
      http::file_body::value_type file;
      beast::error_code fec;
      file.open(path.c_str(), beast::file_mode::scan, fec);
      if (!fec)
      {
        auto res = make_response<http::file_body>(req, http::status::ok);
        res.set(http::field::content_type, mime_type(path));
        res.body() = std::move(file);
        res.prepare_payload();
        auto [wec, m] = co_await http::async_write(socket, res, asio::as_tuple(use_awaitable));
        if (wec)
          break;
        if (!keep_alive)
          break;
        continue;
      }
    }

    http::response<http::string_body> res;
    if (req.method() == http::verb::get && target == "/")
    {
      res = make_response<http::string_body>(req, http::status::ok);
      res.set(http::field::content_type, "text/plain");
      res.body() = "Hello from zokio\n";
    }
    else
    {
      res = make_response<http::string_body>(req, http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: " + target + "\n";
    }
    res.prepare_payload();
    auto [wec, m] = co_await http::async_write(socket, res, asio::as_tuple(use_awaitable));
    if (wec || !keep_alive)
      break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, std::string doc_root)
{
  for (;;)
  {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted)
      co_return;
    if (!ec)
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), doc_root), asio::detached);
  }
}

} // namespace

int main(int argc, char* argv[])
{
  try
  {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 8080;
    std::string doc_root = argc > 2 ? argv[2] : ".";
    int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    if (threads < 1)
      threads = 1;
    zokio::io_context ctx(threads);
    tcp::acceptor acceptor(ctx, tcp::endpoint(tcp::v4(), port));
    std::printf("listening on %u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    asio::co_spawn(ctx, listen(acceptor, doc_root), asio::detached);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i)
      pool.emplace_back([&] { ctx.run(); });
    ctx.run();
    for (auto& t : pool)
      t.join();
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }
}
