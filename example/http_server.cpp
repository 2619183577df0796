// example/http_server.cpp: an HTTP/1.1 server with Boost.Beast over zokio
// sockets.
//
//   http_server [port [doc_root [threads]]]
//
// GET / answers a fixed text; GET /files/<path> serves the file <path> under
// doc_root (default: the current directory); anything else is 404.
// Connections are kept alive as the client asks. One coroutine per
// connection: beast::http::async_read and async_write work directly on a
// zokio::ip::tcp::socket. Files are read with zokio::random_access_file in
// 64 KiB blocks, each sent before the next is read: no read of the disk
// blocks the thread (io_uring requests; zokio's blocking pool on epoll and
// kqueue).
//
// SIGINT or SIGTERM (a zokio::signal_set) stops the server gracefully: it
// stops accepting, closes the connections that wait for a request, lets
// the requests in flight finish, and exits with status 0.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/random_access_file.hpp>
#include <zokio/signal_set.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

#include <array>
#include <filesystem>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <mutex>
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

// The connections, so that a stop can close those that wait for a request.
// Connections run on any thread of the context: under the mutex.
struct server_state
{
  std::mutex mutex;
  bool stopping = false;
  struct connection
  {
    tcp::socket* socket;
    bool idle;  // waiting for the start of a request
  };
  std::list<connection> connections;

  // Stops accepting (the caller closes the acceptor) and ends every idle
  // connection's wait with the end of the stream (a receive shutdown lasts,
  // so a read that is only about to start ends too); busy ones close after
  // their response.
  void stop()
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    for (auto& c : connections)
    {
      beast::error_code ignored;
      if (c.idle)
        c.socket->shutdown(tcp::socket::shutdown_receive, ignored);
    }
  }
};

// Sends path's contents after the response header: each block read from
// the file (asynchronously, at its offset) is written before the next.
asio::awaitable<beast::error_code> send_file(tcp::socket& socket,
    const http::request<http::string_body>& req, zokio::random_access_file& file,
    const std::string& path)
{
  const std::uint64_t size = file.size();
  auto res = make_response<http::empty_body>(req, http::status::ok);
  res.set(http::field::content_type, mime_type(path));
  res.content_length(size);
  http::response_serializer<http::empty_body> sr(res);
  auto [hec, hn] = co_await http::async_write_header(socket, sr, asio::as_tuple(use_awaitable));
  if (hec)
    co_return hec;
  std::array<char, 64 * 1024> block;
  for (std::uint64_t offset = 0; offset < size;)
  {
    auto [rec, n] = co_await file.async_read_some_at(offset, asio::buffer(block),
        asio::as_tuple(use_awaitable));
    if (rec)
      co_return rec;  // the file shrank or failed: the connection is closed
    auto [wec, m] = co_await asio::async_write(socket, asio::buffer(block.data(), n),
        asio::as_tuple(use_awaitable));
    if (wec)
      co_return wec;
    offset += n;
  }
  co_return beast::error_code();
}

asio::awaitable<void> serve(tcp::socket socket, std::string doc_root, server_state& state)
{
  std::list<server_state::connection>::iterator me;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.stopping)
      co_return;
    me = state.connections.insert(state.connections.end(), {&socket, true});
  }
  auto set_idle = [&](bool idle) {
    std::lock_guard<std::mutex> lock(state.mutex);
    me->idle = idle;
    return !state.stopping;
  };
  beast::flat_buffer buffer;
  for (;;)
  {
    if (!set_idle(true))
      break;  // stopping: no new request on this connection
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(socket, buffer, req, asio::as_tuple(use_awaitable));
    set_idle(false);
    if (ec)
      break; // end_of_stream (also after a stop), reset, bad request
    std::string target(req.target());
    bool keep_alive = req.keep_alive();

    if (req.method() == http::verb::get && target.rfind("/files/", 0) == 0
        && target.find("..") == std::string::npos)
    {
      std::string path = doc_root + "/" + target.substr(7);
      zokio::random_access_file file(socket.get_executor());
      beast::error_code fec;
      file.open(path, zokio::file_base::read_only, fec);
      if (!fec && std::filesystem::is_regular_file(path, fec) && !fec)
      {
        beast::error_code sec = co_await send_file(socket, req, file, path);
        if (sec || !keep_alive)
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
  std::lock_guard<std::mutex> lock(state.mutex);
  state.connections.erase(me);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, std::string doc_root, server_state& state)
{
  for (;;)
  {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open())
      co_return;
    if (!ec)
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), doc_root, state),
          asio::detached);
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
    server_state state;
    asio::co_spawn(ctx, listen(acceptor, doc_root, state), asio::detached);
    // A graceful stop: run() returns once the requests in flight are done.
    zokio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
      if (ec)
        return;
      beast::error_code ignored;
      acceptor.close(ignored);
      state.stop();
    });
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
