// Runs the programs in example/ (as child processes) and checks what they do.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>

#define BOOST_TEST_MODULE examples
#include <boost/test/unit_test.hpp>

#include <support/process.hpp>
#include <support/seccomp.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using zokio::ip::tcp;
using zokio_test::child;

namespace {

std::string program(const char* name)
{
  return std::string(ZOKIO_EXAMPLE_DIR) + "/" + name;
}

tcp::endpoint local(unsigned short port)
{
  return {asio::ip::address_v4::loopback(), port};
}

} // namespace

BOOST_AUTO_TEST_CASE(echo_server_and_client)
{
  // Two runs of the client (20 connections each); the server stops after 40.
  child server({program("echo_server"), "0", "2", "40"});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);
  for (int run = 0; run < 2; ++run)
  {
    child client({program("echo_client"), "127.0.0.1", std::to_string(port), "20", "50", "1000"});
    std::string summary = client.read_line();
    BOOST_TEST_MESSAGE(summary);
    BOOST_TEST(client.wait() == 0);
  }
  BOOST_TEST(server.wait() == 0);
}

// The receive-loop echo server: the client checks every byte it gets back.
BOOST_AUTO_TEST_CASE(echo_server_each_and_client)
{
  child server({program("echo_server_each"), "0", "40"});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);
  for (int run = 0; run < 2; ++run)
  {
    child client({program("echo_client"), "127.0.0.1", std::to_string(port), "20", "50", "1000"});
    std::string summary = client.read_line();
    BOOST_TEST_MESSAGE(summary);
    BOOST_TEST(client.wait() == 0);
  }
  BOOST_TEST(server.wait() == 0);
}

// The same server and client where io_uring is refused by a seccomp filter
// (Docker's and containerd's default profiles answer EPERM): a child process
// installs the filter, which the programs it starts inherit; both must run on
// epoll, and the client checks every byte it gets back.
BOOST_AUTO_TEST_CASE(echo_server_and_client_with_io_uring_refused)
{
  pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0)
  {
    int code = 0;
    try
    {
      ::unsetenv("ZOKIO_BACKEND");
      if (!zokio_test::refuse_io_uring(EPERM))
        ::_exit(10);
      child server({program("echo_server"), "0", "2", "20"});
      unsigned short port = zokio_test::port_from(server.read_line());
      std::string backend = server.read_line();
      if (port == 0)
        code = 11;
      else if (backend.rfind("backend epoll: io_uring refused", 0) != 0)
        code = 12;
      else
      {
        child client({program("echo_client"), "127.0.0.1", std::to_string(port), "20", "50", "4096"});
        std::string summary = client.read_line();
        if (client.wait() != 0 || summary.find(" 0 failed") == std::string::npos)
          code = 13;
        else if (server.wait() != 0)
          code = 14;
      }
    }
    catch (...)
    {
      code = 15;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0,
      "exit " << WEXITSTATUS(status) << " (11: no port, 12: not on epoll, 13: client failed, 14: server failed)");
}

BOOST_AUTO_TEST_CASE(chat_server_delivers_to_the_others)
{
  child server({program("chat_server"), "0", "3"});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);
  zokio::io_context ctx;
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 3; ++i)
  {
    clients.emplace_back(ctx);
    clients.back().connect(local(port));
    // A round trip so that the server has accepted (and numbered) it.
    std::string hello = "joined " + std::to_string(i + 1) + "\n";
    asio::write(clients.back(), asio::buffer(hello));
  }
  // Each later joiner's greeting reached the earlier ones; read them away.
  std::vector<std::string> inbox(3);
  for (int i = 0; i < 2; ++i)
    for (int k = i + 1; k < 3; ++k)
      asio::read_until(clients[i], asio::dynamic_buffer(inbox[i]), '\n'), inbox[i].erase(0, inbox[i].find('\n') + 1);
  asio::write(clients[0], asio::buffer(std::string("hello room\n")));
  for (int i = 1; i < 3; ++i)
  {
    std::size_t n = asio::read_until(clients[i], asio::dynamic_buffer(inbox[i]), "hello room\n");
    std::string line = inbox[i].substr(0, n);
    BOOST_TEST(line.find("1: hello room\n") != std::string::npos, line);
  }
  clients.clear();
  BOOST_TEST(server.wait() == 0);
}

BOOST_AUTO_TEST_CASE(udp_echo_server_and_client)
{
  child server({program("udp_echo"), "server", "0"});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);
  child client({program("udp_echo"), "client", "127.0.0.1", std::to_string(port), "200", "1400"});
  BOOST_TEST_MESSAGE(client.read_line());
  BOOST_TEST(client.wait() == 0);
}

BOOST_AUTO_TEST_CASE(file_copy_copies_every_byte)
{
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("zokio_copy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string content;
  content.reserve(5 * 1000 * 1000 + 7);
  for (std::size_t i = 0; i < 5 * 1000 * 1000 + 7; ++i)
    content.push_back(static_cast<char>((i * 131u) >> 5));
  std::ofstream(dir / "src", std::ios::binary) << content;
  for (const char* depth : {"1", "4", "16"})
  {
    BOOST_TEST_CONTEXT("depth " << depth)
    {
      child copy({program("file_copy"), (dir / "src").string(), (dir / "dst").string(), "65536", depth});
      std::string line = copy.read_line();
      BOOST_TEST(copy.wait() == 0);
      BOOST_TEST(line.rfind("copied " + std::to_string(content.size()) + " bytes", 0) == 0u, line);
      std::ifstream in(dir / "dst", std::ios::binary);
      std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      BOOST_TEST((got == content));
    }
  }
  // A missing source: a message and status 1, no crash.
  child missing({program("file_copy"), (dir / "none").string(), (dir / "dst2").string()});
  BOOST_TEST(missing.wait() == 1);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(pipeline_runs_two_children_through_a_pipe)
{
  child p({program("pipeline")});
  std::string a = p.read_line(), b = p.read_line(), c = p.read_line();
  BOOST_TEST(p.wait() == 0);
  BOOST_TEST(a == "apple");
  BOOST_TEST(b == "fig");
  BOOST_TEST(c == "pear");
  child q({program("pipeline"), "seq 1 20000", "wc -l"});
  std::string n = q.read_line();
  BOOST_TEST(q.wait() == 0);
  BOOST_TEST(n.find("20000") != std::string::npos, n);
  child bad({program("pipeline"), "true", "exit 3"});
  BOOST_TEST(bad.wait() == 1);
}

BOOST_AUTO_TEST_CASE(http_server_stops_gracefully_on_sigterm)
{
  // One connection idle between requests, one in the middle of a large
  // file: SIGTERM closes the first, lets the second finish, and the server
  // exits 0.
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("zokio_http_stop_" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::string content(16 << 20, 'q');
  content += "end";
  std::ofstream(root / "big.bin", std::ios::binary) << content;

  child server({program("http_server"), "0", root.string()});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);

  zokio::io_context ctx;
  tcp::socket idle(ctx), busy(ctx);
  idle.connect(local(port));
  busy.connect(local(port));
  boost::beast::flat_buffer idle_buffer, busy_buffer;
  {
    http::request<http::empty_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "localhost");
    http::write(idle, req);
    http::response<http::string_body> res;
    http::read(idle, idle_buffer, res);
    BOOST_TEST(res.keep_alive());
  }
  http::request<http::empty_body> req{http::verb::get, "/files/big.bin", 11};
  req.set(http::field::host, "localhost");
  http::write(busy, req);
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read_header(busy, busy_buffer, parser);
  BOOST_TEST(parser.content_length().value_or(0) == content.size());

  server.kill(SIGTERM);
  // The idle connection ends (the end of the stream), the busy one gets
  // its whole body.
  char c;
  boost::system::error_code ec;
  idle.read_some(asio::buffer(&c, 1), ec);
  BOOST_TEST((ec == asio::error::eof));
  http::read(busy, busy_buffer, parser);
  BOOST_TEST(parser.get().body().size() == content.size());
  BOOST_TEST((parser.get().body() == content));
  BOOST_TEST(server.wait() == 0, "exit status 0 after the stop");
  // Nothing listens any more.
  tcp::socket late(ctx);
  late.connect(local(port), ec);
  BOOST_TEST(!!ec);
  fs::remove_all(root);
}

BOOST_AUTO_TEST_CASE(http_server_fixed_body_files_and_keep_alive)
{
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("zokio_http_" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::string content(100000, 'z');
  content += "end";
  std::ofstream(root / "data.txt") << content;

  child server({program("http_server"), "0", root.string()});
  unsigned short port = zokio_test::port_from(server.read_line());
  BOOST_TEST_REQUIRE(port != 0);

  zokio::io_context ctx;
  tcp::socket s(ctx);
  s.connect(local(port));
  boost::beast::flat_buffer buffer;
  auto get = [&](const std::string& target, bool keep_alive) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost");
    req.keep_alive(keep_alive);
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buffer, res);
    return res;
  };
  // Three requests on one connection (keep-alive), then one that closes.
  auto r1 = get("/", true);
  BOOST_TEST(r1.result_int() == 200u);
  BOOST_TEST(r1.body() == "Hello from zokio\n");
  BOOST_TEST(r1.keep_alive());
  auto r2 = get("/files/data.txt", true);
  BOOST_TEST(r2.result_int() == 200u);
  BOOST_TEST((r2.body() == content));
  auto r3 = get("/missing", true);
  BOOST_TEST(r3.result_int() == 404u);
  auto r4 = get("/", false);
  BOOST_TEST(r4.result_int() == 200u);
  BOOST_TEST(!r4.keep_alive());
  char c;
  boost::system::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  BOOST_TEST((ec == asio::error::eof));
  fs::remove_all(root);
}
