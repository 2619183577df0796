// Connection churn: many connect / echo / close cycles against a zokio
// server, half of the clients closing with a reset (SO_LINGER 0), on an
// io_context and on a thread_pool. Afterwards the process holds as many
// descriptors and heap blocks as before (after a warm-up that fills the
// recycling caches), every session has ended, and accept still works.
//
// ZOKIO_CHURN_CYCLES overrides the number of cycles per case (default
// 100,000; 10,000 under the sanitizers).
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE churn
#include <boost/test/unit_test.hpp>

#include <support/descriptors.hpp>
#include <support/net.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <support/live_blocks.hpp>

using zokio_test::live_blocks;

namespace {

namespace asio = boost::asio;
using zokio::ip::tcp;
using boost::system::error_code;

int cycles()
{
  if (const char* v = std::getenv("ZOKIO_CHURN_CYCLES"))
    return std::atoi(v);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 10'000;
#else
  return 100'000;
#endif
}

// The server: accepts for ever (until stop()), and each session echoes what
// it reads until the peer closes or resets. Sessions own themselves
// (shared_ptr captured by their handlers); the counters are atomic because a
// pool runs them on either worker.
class echo_server
{
public:
  template <typename Context>
  explicit echo_server(Context& ctx) : acceptor_(ctx, zokio_test::loopback_v4())
  {
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void start() { accept(); }

  // From another thread: the acceptor is closed on its executor.
  void stop()
  {
    asio::post(acceptor_.get_executor(), [this] { acceptor_.close(); });
  }

  long sessions_ended() const { return ended_.load(); }
  long accept_errors() const { return accept_errors_.load(); }
  long echo_errors() const { return echo_errors_.load(); }

private:
  struct session : std::enable_shared_from_this<session>
  {
    session(tcp::socket s, echo_server& o) : socket(std::move(s)), owner(o) {}
    ~session() { owner.ended_.fetch_add(1); }

    void read()
    {
      socket.async_read_some(asio::buffer(data), [self = shared_from_this()](error_code ec, std::size_t n) {
        if (ec)
        {
          // The two ends a client makes: a close (eof) or a reset.
          if (ec != asio::error::eof && ec != asio::error::connection_reset)
            self->owner.echo_errors_.fetch_add(1);
          return;
        }
        asio::async_write(self->socket, asio::buffer(self->data, n),
            [self](error_code ec, std::size_t) {
              if (ec)
              {
                if (ec != asio::error::connection_reset && ec != asio::error::broken_pipe)
                  self->owner.echo_errors_.fetch_add(1);
                return;
              }
              self->read();
            });
      });
    }

    tcp::socket socket;
    echo_server& owner;
    std::array<char, 64> data;
  };

  void accept()
  {
    acceptor_.async_accept([this](error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
      if (ec)
        accept_errors_.fetch_add(1);
      else
        std::make_shared<session>(std::move(s), *this)->read();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::atomic<long> ended_{0};
  std::atomic<long> accept_errors_{0};
  std::atomic<long> echo_errors_{0};
};

// One client cycle with the blocking calls: connect, send 16 bytes, read
// them back and compare, then close (reset: SO_LINGER with a zero timeout).
// Returns false on any failure.
bool client_cycle(unsigned short port, int i, bool reset)
{
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  char out[16], in[16];
  for (int k = 0; k < 16; ++k)
    out[k] = static_cast<char>(i * 7 + k);
  ok = ok && ::send(fd, out, sizeof(out), MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(out));
  std::size_t got = 0;
  while (ok && got < sizeof(in))
  {
    ssize_t n = ::recv(fd, in + got, sizeof(in) - got, 0);
    if (n <= 0)
      ok = false;
    else
      got += static_cast<std::size_t>(n);
  }
  ok = ok && std::memcmp(in, out, sizeof(in)) == 0;
  if (reset)
  {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  ::close(fd);
  return ok;
}

// Runs `n` cycles; returns how many failed.
int run_cycles(unsigned short port, int first, int n)
{
  int failed = 0;
  for (int i = first; i < first + n; ++i)
    if (!client_cycle(port, i, i % 2 == 1))
      ++failed;
  return failed;
}

// Waits (at most 20 s) until the server has ended `n` sessions.
bool wait_for_sessions(const echo_server& s, long n)
{
  for (int i = 0; i < 20'000 && s.sessions_ended() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (s.sessions_ended() >= n)
    return true;
  BOOST_TEST_MESSAGE("sessions ended: " << s.sessions_ended() << " of " << n);
  return false;
}

template <typename Context>
void churn(Context& ctx, const std::function<void()>& run_and_join)
{
  const int n = cycles();
  const int warm = std::min(n, 2'000);
  BOOST_TEST_MESSAGE(n << " cycles after " << warm << " warm-up cycles");
  auto server = std::make_unique<echo_server>(ctx);
  server->start();
  const unsigned short port = server->port();

  BOOST_TEST_REQUIRE(run_cycles(port, 0, warm) == 0);
  BOOST_TEST_REQUIRE(wait_for_sessions(*server, warm));
  const int fds_before = zokio_test::open_descriptors();
  const long blocks_before = live_blocks.load();

  BOOST_TEST(run_cycles(port, warm, n) == 0);
  BOOST_TEST_REQUIRE(wait_for_sessions(*server, warm + n));
  const int fds_after = zokio_test::open_descriptors();
  const long blocks_after = live_blocks.load();

  // Accept still works: one more cycle.
  BOOST_TEST(client_cycle(port, 0, false));
  BOOST_TEST(wait_for_sessions(*server, warm + n + 1));

  BOOST_TEST(server->accept_errors() == 0);
  BOOST_TEST(server->echo_errors() == 0);
  BOOST_TEST_MESSAGE("descriptors " << fds_before << " -> " << fds_after << ", heap blocks "
      << blocks_before << " -> " << blocks_after);
  BOOST_TEST(fds_after == fds_before);
  // A few blocks of slack: a thread's recycling cache or the descriptor
  // table may take one more block in a cycle the warm-up did not reach;
  // one block per connection would be thousands.
  BOOST_TEST(blocks_after - blocks_before <= 16);
  BOOST_TEST(blocks_after - blocks_before >= -16);

  server->stop();
  run_and_join();
}

} // namespace

BOOST_AUTO_TEST_CASE(churn_on_an_io_context)
{
  zokio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  churn(ctx, [&] {
    guard.reset();
    runner.join();
  });
}

BOOST_AUTO_TEST_CASE(churn_on_a_thread_pool)
{
  zokio::thread_pool pool(2);
  churn(pool, [&] { pool.join(); });
}
