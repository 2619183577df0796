// fork() with a context: notify_fork as Asio documents it. The child gets
// rings, pollers and wake-ups of its own (the parent's are left as they
// are), the operations the parent had pending are made again in the child
// or complete there (so closing an inherited socket aborts them), and both
// processes then serve on their own while the parent's pending operations
// carry on undisturbed. Boost.Process v2, which calls notify_fork around its
// fork, spawns from a zokio context.
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE fork
#include <boost/test/unit_test.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/write.hpp>

#define BOOST_PROCESS_V2_SEPARATE_COMPILATION
#include <boost/process/v2.hpp>
#include <boost/process/v2/src.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = zokio::ip::tcp;
using namespace std::chrono_literals;

// Completions with operation_aborted of the accepts and reads a server had
// pending (counted in whichever process they complete).
std::atomic<int> aborted_accepts{0};
std::atomic<int> aborted_reads{0};
// Sessions that ended otherwise (their client closed).
std::atomic<int> sessions_ended{0};

template <typename Executor>
struct session : std::enable_shared_from_this<session<Executor>>
{
  explicit session(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  std::array<char, 4096> buf{};

  void read()
  {
    auto self = this->shared_from_this();
    sock.async_read_some(asio::buffer(buf), [self](error_code ec, std::size_t n) {
      if (ec)
      {
        if (ec == asio::error::operation_aborted)
          aborted_reads.fetch_add(1);
        else
          sessions_ended.fetch_add(1);
        return;
      }
      asio::async_write(self->sock, asio::buffer(self->buf, n),
          [self](error_code ec, std::size_t) {
            if (!ec)
              self->read();
          });
    });
  }
};

// An echo server on 127.0.0.1 (port chosen by the kernel), keeping its
// sessions so that a child can close the ones it inherited.
template <typename Executor>
struct echo_server
{
  explicit echo_server(const Executor& ex) : acceptor(ex, {asio::ip::address_v4::loopback(), 0}) {}

  tcp::acceptor acceptor;
  std::vector<std::weak_ptr<session<Executor>>> sessions;
  std::atomic<int> accepted{0};

  unsigned short port() const { return acceptor.local_endpoint().port(); }

  void accept()
  {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (ec)
      {
        if (ec == asio::error::operation_aborted)
          aborted_accepts.fetch_add(1);
        return;
      }
      auto ss = std::make_shared<session<Executor>>(std::move(s));
      sessions.push_back(ss);
      ss->read();
      accepted.fetch_add(1);
      accept();
    });
  }

  void close_all()
  {
    error_code ignored;
    acceptor.close(ignored);
    for (auto& w : sessions)
      if (auto s = w.lock())
        s->sock.close(ignored);
  }
};

// A blocking client: connects to port, or uses fd.
int connect_to(unsigned short port)
{
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
  {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// rounds round trips of 64 verified bytes (tagged with seed).
bool echo_rounds(int fd, int rounds, int seed)
{
  for (int i = 0; i < rounds; ++i)
  {
    char out[64], in[64];
    for (int k = 0; k < 64; ++k)
      out[k] = static_cast<char>(seed * 31 + i * 7 + k);
    if (::send(fd, out, sizeof(out), MSG_NOSIGNAL) != 64)
      return false;
    std::size_t got = 0;
    while (got < sizeof(in))
    {
      ssize_t n = ::recv(fd, in + got, sizeof(in) - got, 0);
      if (n <= 0)
        return false;
      got += static_cast<std::size_t>(n);
    }
    if (std::memcmp(in, out, sizeof(in)) != 0)
      return false;
  }
  return true;
}

// Runs ctx on the calling thread until done() or the limit.
template <typename Done>
bool run_until(zokio::io_context& ctx, Done done, std::chrono::seconds limit = 10s)
{
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done())
  {
    if (std::chrono::steady_clock::now() > give_up)
      return false;
    ctx.restart();
    ctx.run_for(5ms);
  }
  return true;
}

bool read_port(int fd, unsigned short& port)
{
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 10'000) != 1)
    return false;
  return ::read(fd, &port, sizeof(port)) == sizeof(port);
}

int wait_child(pid_t pid)
{
  int status = 0;
  for (int i = 0; i < 1000; ++i)
  {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// Forks with notify_fork on ctx around it. The child closes
// close_in_child, and child(port_fd), which serves and writes its port to
// port_fd, gives its exit status (21 if it throws; it leaves with _exit,
// not through the parent's destructors). The parent gets the child's pid
// (or -1) and the port it wrote (0 if none came).
template <typename Context, typename Child>
pid_t fork_server(Context& ctx, int close_in_child, Child child, unsigned short& child_port)
{
  child_port = 0;
  int port_pipe[2];
  if (::pipe2(port_pipe, O_CLOEXEC) != 0)
    return -1;
  ctx.notify_fork(asio::execution_context::fork_prepare);
  pid_t pid = ::fork();
  if (pid == 0)
  {
    ::close(close_in_child);
    ::close(port_pipe[0]);
    int status = 21;
    try
    {
      ctx.notify_fork(asio::execution_context::fork_child);
      status = child(port_pipe[1]);
    }
    catch (...)
    {
    }
    ::_exit(status);
  }
  ctx.notify_fork(asio::execution_context::fork_parent);
  ::close(port_pipe[1]);
  if (pid > 0 && !read_port(port_pipe[0], child_port))
  {
    // No port from the child: it is stuck or gone. It must not outlive the
    // test (it holds the test's output, and ctest would wait for it).
    // (The caller's check of child_port reports it.)
    child_port = 0;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  ::close(port_pipe[0]);
  return pid;
}

// The child's part of the cases below: closes what it inherited (the
// pending accept and read complete there with operation_aborted), serves
// two verified clients on an acceptor of its own, made on ctx_ex's context,
// and tells its port through port_fd. Returns its exit status.
template <typename Executor, typename Inherited, typename Run>
int child_serves(const Executor& ex, Inherited& inherited, int port_fd, Run run)
{
  aborted_accepts = 0;
  aborted_reads = 0;
  sessions_ended = 0;
  inherited.close_all();
  echo_server<Executor> own(ex);
  own.accept();
  unsigned short port = own.port();
  if (::write(port_fd, &port, sizeof(port)) != sizeof(port))
    return 10;
  // Until both clients have made their round trips and closed.
  if (!run([&] { return sessions_ended.load() >= 2 && aborted_reads.load() >= 1; }))
    return 11;
  // Let the inherited accept's abort arrive too (it may come after).
  run([&] { return aborted_accepts.load() >= 1; });
  if (aborted_accepts.load() != 1)
    return 12;
  if (aborted_reads.load() != 1)
    return 13;
  return 0;
}

} // namespace

// An io_context with an accept and a session's read pending forks; the
// child closes them (each completes there with operation_aborted) and
// serves on its own acceptor; meanwhile the parent keeps serving: the
// session whose read was pending at the fork and a new connection.
BOOST_AUTO_TEST_CASE(io_context_child_serves_while_the_parent_keeps_serving)
{
  zokio::io_context ctx;
  echo_server<zokio::io_context::executor_type> srv(ctx.get_executor());
  srv.accept();
  const unsigned short parent_port = srv.port();

  int c1 = connect_to(parent_port);
  BOOST_TEST_REQUIRE(c1 >= 0);
  std::atomic<bool> c1_ok{false};
  std::thread first([&] { c1_ok = echo_rounds(c1, 10, 1); });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return c1_ok.load(); }));
  first.join();
  // Let the session's next read and the next accept reach the kernel.
  ctx.restart();
  ctx.run_for(20ms);

  unsigned short child_port = 0;
  pid_t pid = fork_server(ctx, c1, [&](int port_fd) {
    return child_serves(ctx.get_executor(), srv, port_fd,
        [&](auto done) { return run_until(ctx, done); });
  }, child_port);
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST_REQUIRE(child_port != 0);

  std::atomic<int> done{0};
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  auto client = [&](int fd, int seed) {
    clients.emplace_back([&, fd, seed] {
      if (fd >= 0 && echo_rounds(fd, 20, seed))
        good.fetch_add(1);
      if (fd >= 0)
        ::close(fd);
      done.fetch_add(1);
    });
  };
  client(c1, 2);                           // the session pending at the fork
  client(connect_to(parent_port), 3);      // a new one of the parent's
  client(connect_to(child_port), 4);       // two of the child's
  client(connect_to(child_port), 5);
  BOOST_TEST(run_until(ctx, [&] { return done.load() == 4; }));
  for (auto& t : clients)
    t.join();
  BOOST_TEST(good.load() == 4);
  BOOST_TEST(wait_child(pid) == 0);
  // Nothing of the parent's was aborted by the child's closes.
  BOOST_TEST(aborted_accepts.load() == 0);
  BOOST_TEST(srv.accepted.load() == 2);
}

// A thread pool forks from the main thread (not one of its workers): the
// child (which has none of the workers) serves on a new io_context after
// closing what it inherited, while the pool goes on serving in the parent.
BOOST_AUTO_TEST_CASE(thread_pool_forks_and_the_child_uses_a_new_context)
{
  zokio::thread_pool pool(2);
  echo_server<zokio::thread_pool::executor_type> srv(pool.get_executor());
  asio::post(pool, [&] { srv.accept(); });
  int c1 = -1;
  for (int i = 0; i < 100 && c1 < 0; ++i)
    c1 = connect_to(srv.port());
  BOOST_TEST_REQUIRE(c1 >= 0);
  BOOST_TEST_REQUIRE(echo_rounds(c1, 10, 6));

  unsigned short child_port = 0;
  pid_t pid = fork_server(pool, c1, [](int port_fd) {
    // The pool's own acceptor is left alone (its workers are the
    // parent's); the child's server runs on a context of its own.
    sessions_ended = 0;
    zokio::io_context ctx;
    echo_server<zokio::io_context::executor_type> own(ctx.get_executor());
    own.accept();
    unsigned short port = own.port();
    if (::write(port_fd, &port, sizeof(port)) != sizeof(port))
      return 10;
    if (!run_until(ctx, [&] { return sessions_ended.load() >= 2; }))
      return 11;
    return 0;
  }, child_port);
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST_REQUIRE(child_port != 0);

  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (auto [fd, seed] : {std::pair{c1, 7}, std::pair{connect_to(srv.port()), 8},
           std::pair{connect_to(child_port), 9}, std::pair{connect_to(child_port), 10}})
    clients.emplace_back([&good, fd, seed] {
      if (fd >= 0 && echo_rounds(fd, 20, seed))
        good.fetch_add(1);
      if (fd >= 0)
        ::close(fd);
    });
  for (auto& t : clients)
    t.join();
  BOOST_TEST(good.load() == 4);
  BOOST_TEST(wait_child(pid) == 0);
  asio::post(pool, [&] { srv.close_all(); });
  pool.join();
}

// Boost.Process v2 spawns from a zokio context (its launcher calls
// notify_fork on the executor's context around the fork): the child's
// output arrives through an Asio pipe on the context and its exit code
// through async_wait.
BOOST_AUTO_TEST_CASE(boost_process_v2_spawns_from_a_zokio_context)
{
  namespace bp2 = boost::process::v2;
  zokio::io_context ctx;
  asio::readable_pipe out(ctx);
  error_code spawn_ec;
  bp2::default_process_launcher launch;
  bp2::process child = launch(ctx.get_executor(), spawn_ec, "/bin/sh",
      std::vector<std::string>{"-c", "echo hello from the child; exit 7"},
      bp2::process_stdio{{}, out, {}});
  BOOST_TEST_REQUIRE(!spawn_ec, "spawn: " << spawn_ec.message() << " (" << spawn_ec.value() << ")");
  std::string text;
  error_code read_ec;
  asio::async_read(out, asio::dynamic_buffer(text),
      [&](error_code ec, std::size_t) { read_ec = ec; });
  int code = -1;
  error_code wait_ec;
  child.async_wait([&](error_code ec, int c) {
    wait_ec = ec;
    code = c;
  });
  ctx.run_for(10s);
  BOOST_TEST(read_ec == asio::error::eof);
  BOOST_TEST(text == "hello from the child\n");
  BOOST_TEST(!wait_ec);
  BOOST_TEST(code == 7);
}
