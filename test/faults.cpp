// Fault injection against zokio's own sockets (zokio::ip::tcp::socket and
// acceptor on a zokio::io_context or zokio::thread_pool): peers that reset
// in the middle of a read or a write, a client process killed with SIGKILL,
// short writes, running out of descriptors during accept, a client that
// reads nothing while others are served, tiny io_uring queues under an echo
// load, cancellation racing completion from another thread, and a context
// created under RLIMIT_MEMLOCK = 0.
//
// Every error must come back as a boost::system::error_code; nothing may
// crash, hang (every wait is bounded: run_bounded's watchdog, socket
// timeouts on the blocking peers, deadlines on the spin waits), lose or
// reorder data, or raise SIGPIPE.
//
// The peers that play the misbehaving client are plain blocking POSIX
// sockets (with SO_RCVTIMEO / SO_SNDTIMEO, so that a hung case fails in
// seconds), driven from a thread of the test or from a child process.
#include <zokio/future.hpp>
#include <zokio/io_context.hpp>
#include <zokio/ip/tcp.hpp>
#include <zokio/thread_pool.hpp>
#include <zokio/timeout.hpp>
#include <zokio/timer/steady_timer.hpp>

#define BOOST_TEST_MODULE faults
#include <boost/test/unit_test.hpp>

#include <support/descriptors.hpp>
#include <support/net.hpp>
#include <support/run.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

// Linux libkqueue's (see settle_libkqueue below); weak: absent from builds
// without libkqueue.
extern "C" void libkqueue_drain_pending_close(void) __attribute__((weak));

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using zokio::ip::tcp;

namespace {

//------------------------------------------------------------------------------
// Helpers.

// The byte at offset i of stream `seed`: a 32-bit word per 4 bytes, distinct
// for every word of the first 16 GiB, so that a lost, repeated or reordered
// chunk shows at its first byte.
unsigned char pattern_byte(std::size_t i, unsigned seed)
{
  const std::uint32_t w = static_cast<std::uint32_t>(i / 4) * 2654435761u + seed * 40503u + 1u;
  return static_cast<unsigned char>(w >> ((i % 4) * 8));
}

std::vector<char> pattern(std::size_t n, unsigned seed, std::size_t offset = 0)
{
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<char>(pattern_byte(offset + i, seed));
  return v;
}

constexpr std::size_t npos = static_cast<std::size_t>(-1);

// The first offset (from `offset`) where p differs from the pattern, or npos.
std::size_t first_mismatch(const char* p, std::size_t n, unsigned seed, std::size_t offset = 0)
{
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<unsigned char>(p[i]) != pattern_byte(offset + i, seed))
      return offset + i;
  return npos;
}

// A descriptor closed on destruction.
class unique_fd
{
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept
  {
    reset(o.release());
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1)
  {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

private:
  int fd_ = -1;
};

// A blocking TCP client socket connected to 127.0.0.1:port, its blocking
// calls bounded by 5 s timeouts; rcvbuf, if not zero, is set before the
// connect. Invalid on failure.
unique_fd raw_connect(unsigned short port, int rcvbuf = 0)
{
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return fd;
  ::timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (rcvbuf)
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  ::sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<const ::sockaddr*>(&a), sizeof a) != 0)
    fd.reset();
  return fd;
}

// Closes with a reset (RST): SO_LINGER on with a zero timeout.
void reset_close(unique_fd& fd)
{
  ::linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

bool send_all(int fd, const char* p, std::size_t n)
{
  while (n > 0)
  {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool recv_all(int fd, char* p, std::size_t n)
{
  while (n > 0)
  {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Spins (yielding) until pred() holds or limit passes; returns pred().
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 5s)
{
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred())
  {
    if (std::chrono::steady_clock::now() > until)
      return pred();
    std::this_thread::yield();
  }
  return true;
}

std::string describe(const error_code& ec)
{
  return ec.category().name() + std::string(":") + std::to_string(ec.value()) + " (" + ec.message() + ")";
}

bool is_reset_or_pipe(const error_code& ec)
{
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

// Sets SIGPIPE's disposition to the default (the process dies of it) and
// unblocks it in the calling thread, for the lifetime of the object.
class default_sigpipe
{
public:
  default_sigpipe()
  {
    struct sigaction sa{};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, &old_action_);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ::pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_);
  }
  ~default_sigpipe()
  {
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::sigaction(SIGPIPE, &old_action_, nullptr);
  }
  default_sigpipe(const default_sigpipe&) = delete;
  default_sigpipe& operator=(const default_sigpipe&) = delete;

  static bool disposition_is_default()
  {
    struct sigaction now{};
    ::sigaction(SIGPIPE, nullptr, &now);
    return now.sa_handler == SIG_DFL;
  }
  static bool blocked_in_this_thread()
  {
    sigset_t now;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &now);
    return sigismember(&now, SIGPIPE);
  }
  static bool pending()
  {
    sigset_t p;
    sigemptyset(&p);
    ::sigpending(&p);
    return sigismember(&p, SIGPIPE);
  }

private:
  struct sigaction old_action_{};
  sigset_t old_mask_{};
};

// A child process killed (SIGKILL) and reaped on destruction if it still runs.
class forked_child
{
public:
  explicit forked_child(pid_t pid) : pid_(pid) {}
  ~forked_child()
  {
    if (pid_ > 0 && !reaped_)
    {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  forked_child(const forked_child&) = delete;
  forked_child& operator=(const forked_child&) = delete;

  pid_t pid() const { return pid_; }

  // The wait status, or nullopt if the child has not ended within limit.
  std::optional<int> wait(std::chrono::milliseconds limit = 10s)
  {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;)
    {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_)
      {
        reaped_ = true;
        return st;
      }
      if (r < 0 && errno != EINTR)
        return std::nullopt;
      if (std::chrono::steady_clock::now() > until)
        return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }

private:
  pid_t pid_;
  bool reaped_ = false;
};

// libkqueue (the kqueue backend's vehicle on Linux) frees a closed kqueue's
// descriptors later, on its monitoring thread; until then its fork handler
// (linux_libkqueue_fork, run in every forked child) closes that kqueue's
// descriptor numbers in the child, although the numbers may by now belong
// to something else (a pipe made for the child, say). And a free that lands
// while the descriptor table is full makes room in it. So before a fork, and
// before taking every descriptor, the closes pending in libkqueue are
// drained (libkqueue_drain_pending_close, Linux libkqueue's entry point for
// tests).
void settle_libkqueue()
{
  if (libkqueue_drain_pending_close)
    libkqueue_drain_pending_close();
}

//------------------------------------------------------------------------------
// An echo session (read some, write it back, until an error), counting the
// errors that are not a peer's close (eof) or reset.
struct echo_session : std::enable_shared_from_this<echo_session>
{
  echo_session(tcp::socket s, std::atomic<int>& errors) : socket(std::move(s)), errors(errors) {}

  void read()
  {
    socket.async_read_some(asio::buffer(data), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec)
      {
        if (ec != asio::error::eof && ec != asio::error::connection_reset)
          self->errors.fetch_add(1);
        return;
      }
      asio::async_write(self->socket, asio::buffer(self->data, n), [self](error_code ec, std::size_t) {
        if (ec)
        {
          if (!is_reset_or_pipe(ec))
            self->errors.fetch_add(1);
          return;
        }
        self->read();
      });
    });
  }

  tcp::socket socket;
  std::atomic<int>& errors;
  // An odd size, so that reads and writes rarely line up with the peer's.
  char data[1000];
};

} // namespace

//------------------------------------------------------------------------------
// 1. The peer resets (RST) while an asio::async_read for N bytes waits: the
// read completes with connection_reset (or eof), and bytes_transferred is
// exactly what arrived before the reset, every byte as sent.
BOOST_AUTO_TEST_CASE(peer_reset_in_the_middle_of_a_read)
{
  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  unique_fd client = raw_connect(acceptor.local_endpoint().port());
  BOOST_TEST_REQUIRE(static_cast<bool>(client));
  tcp::socket server(ctx);
  acceptor.accept(server);

  constexpr std::size_t want = 64 * 1024;
  constexpr std::size_t chunk = 1000;
  constexpr std::size_t chunks = 3;
  const std::vector<char> sent = pattern(chunk * chunks, 1);
  std::vector<char> buf(want);

  // The completion condition is asked after every read_some: the client
  // sends its next chunk (and finally resets) only once the server has
  // taken the previous one, so that "what arrived" is known exactly.
  std::atomic<std::size_t> progress{0};
  error_code result;
  std::size_t transferred = npos;
  int calls = 0;
  asio::async_read(server, asio::buffer(buf),
      [&](const error_code& ec, std::size_t n) -> std::size_t {
        progress.store(n);
        return ec ? 0 : 65536;
      },
      [&](error_code ec, std::size_t n) {
        result = ec;
        transferred = n;
        ++calls;
      });

  std::atomic<bool> client_ok{true};
  std::thread peer([&] {
    for (std::size_t k = 0; k < chunks; ++k)
    {
      if (!send_all(client.get(), sent.data() + k * chunk, chunk)
          || !wait_until([&] { return progress.load() >= (k + 1) * chunk; }))
      {
        client_ok = false;
        break;
      }
    }
    reset_close(client);
  });
  zokio_test::run_bounded(ctx, 10s);
  peer.join();

  BOOST_TEST(client_ok.load(), "the server did not take the chunks as they were sent");
  BOOST_TEST_MESSAGE("read ended with " << describe(result) << " after " << transferred << " bytes");
  BOOST_TEST(calls == 1);
  BOOST_TEST((result == asio::error::connection_reset || result == asio::error::eof),
      "expected connection_reset or eof, got " << describe(result));
  BOOST_TEST(transferred == chunk * chunks);
  if (transferred <= buf.size())
    BOOST_TEST(first_mismatch(buf.data(), transferred, 1) == npos);
}

//------------------------------------------------------------------------------
// 2. The peer reads 64 KiB of an 8 MiB asio::async_write, then resets: the
// write completes with connection_reset or broken_pipe after fewer than
// 8 MiB, and so do a second asynchronous write and a synchronous one on the
// dead socket (which the kernel answers EPIPE: SIGPIPE unless zokio passes
// MSG_NOSIGNAL). SIGPIPE has its default disposition and is unblocked in the
// thread that runs the context throughout, so a raised SIGPIPE kills the
// process (and fails the suite); afterwards none is pending and the mask is
// as it was.
BOOST_AUTO_TEST_CASE(peer_reset_in_the_middle_of_a_write)
{
  default_sigpipe dfl;
  BOOST_TEST_REQUIRE(default_sigpipe::disposition_is_default());
  BOOST_TEST_MESSAGE("SIGPIPE is at its default action: if the process dies of it here, zokio raised it");

  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  unique_fd client = raw_connect(acceptor.local_endpoint().port());
  BOOST_TEST_REQUIRE(static_cast<bool>(client));
  tcp::socket server(ctx);
  acceptor.accept(server);

  constexpr std::size_t total = 8 * 1024 * 1024;
  constexpr std::size_t peer_reads = 64 * 1024;
  const std::vector<char> data = pattern(total, 2);

  error_code first, second, sync;
  std::size_t first_n = npos, second_n = npos;
  int calls = 0;
  asio::async_write(server, asio::buffer(data), [&](error_code ec, std::size_t n) {
    first = ec;
    first_n = n;
    ++calls;
    // The socket is dead now: the next writes are EPIPE for the kernel.
    server.async_write_some(asio::buffer(data.data(), 4096), [&](error_code ec, std::size_t n) {
      second = ec;
      second_n = n;
      server.write_some(asio::buffer(data.data(), 4096), sync);
    });
  });

  std::atomic<bool> client_ok{false};
  std::thread peer([&] {
    std::vector<char> in(peer_reads);
    client_ok = recv_all(client.get(), in.data(), in.size())
        && first_mismatch(in.data(), in.size(), 2) == npos;
    reset_close(client);
  });
  zokio_test::run_bounded(ctx, 10s);
  peer.join();

  BOOST_TEST(client_ok.load(), "the peer did not receive the first 64 KiB intact");
  BOOST_TEST_MESSAGE("write ended with " << describe(first) << " after " << first_n << " bytes; then "
      << describe(second) << ", then (synchronous) " << describe(sync));
  BOOST_TEST(calls == 1);
  BOOST_TEST(is_reset_or_pipe(first), "expected connection_reset or broken_pipe, got " << describe(first));
  BOOST_TEST(first_n >= peer_reads);
  BOOST_TEST(first_n < total);
  BOOST_TEST(is_reset_or_pipe(second), "second write: " << describe(second));
  BOOST_TEST(second_n == 0u);
  BOOST_TEST(is_reset_or_pipe(sync), "synchronous write: " << describe(sync));
  BOOST_TEST(!default_sigpipe::pending(), "a SIGPIPE is pending");
  BOOST_TEST(!default_sigpipe::blocked_in_this_thread(), "SIGPIPE was left blocked in the thread");
  BOOST_TEST(default_sigpipe::disposition_is_default());
}

//------------------------------------------------------------------------------
// 3. A client process that connected (with a 4 KiB receive buffer, reading
// nothing) is killed with SIGKILL while a 1 MiB asio::async_write to it is
// in flight: the kernel resets the connection, the write completes with
// connection_reset or broken_pipe after fewer than 1 MiB, and run() returns.
// The child is forked before any zokio object of this case exists and makes
// only system calls (alarm() ends it if the parent goes away).
BOOST_AUTO_TEST_CASE(client_process_killed_during_a_write)
{
  settle_libkqueue();
  int port_pipe[2];
  BOOST_TEST_REQUIRE(::pipe2(port_pipe, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0)
  {
    ::alarm(20);
    ::close(port_pipe[1]);
    unsigned short port = 0;
    if (::read(port_pipe[0], &port, sizeof port) != static_cast<ssize_t>(sizeof port))
      ::_exit(2);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const ::sockaddr*>(&a), sizeof a) != 0)
      ::_exit(3);
    for (;;)
      ::pause();
  }
  forked_child child(pid);
  ::close(port_pipe[0]);
  unique_fd to_child(port_pipe[1]);

  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  const unsigned short port = acceptor.local_endpoint().port();
  BOOST_TEST_REQUIRE(::write(to_child.get(), &port, sizeof port) == static_cast<ssize_t>(sizeof port));

  constexpr std::size_t total = 1024 * 1024;
  const std::vector<char> data = pattern(total, 3);
  tcp::socket server(ctx);
  zokio::steady_timer kill_timer(ctx);
  error_code accept_ec, write_ec;
  std::size_t written = npos;
  bool write_done = false, in_flight_at_kill = false, killed = false;
  acceptor.async_accept(server, [&](error_code ec) {
    accept_ec = ec;
    if (ec)
      return;
    server.set_option(asio::socket_base::send_buffer_size(16 * 1024));
    asio::async_write(server, asio::buffer(data), [&](error_code ec, std::size_t n) {
      write_ec = ec;
      written = n;
      write_done = true;
    });
    kill_timer.expires_after(100ms);
    kill_timer.async_wait([&](error_code) {
      in_flight_at_kill = !write_done;
      killed = ::kill(child.pid(), SIGKILL) == 0;
    });
  });
  zokio_test::run_bounded(ctx, 10s);
  std::optional<int> status = child.wait();

  BOOST_TEST_REQUIRE(!accept_ec, describe(accept_ec));
  BOOST_TEST(killed);
  BOOST_TEST(in_flight_at_kill, "the 1 MiB write was not in flight when the child was killed");
  BOOST_TEST(write_done);
  BOOST_TEST_MESSAGE("write ended with " << describe(write_ec) << " after " << written << " bytes");
  BOOST_TEST(is_reset_or_pipe(write_ec), "expected connection_reset or broken_pipe, got " << describe(write_ec));
  BOOST_TEST(written < total);
  BOOST_TEST_REQUIRE(status.has_value(), "the child did not end");
  BOOST_TEST((WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL), "child status " << *status);
}

//------------------------------------------------------------------------------
// 4. Short writes: the server's SO_SNDBUF is 4096 bytes (the client's
// receive buffer 4096 too) and the client reads slowly (4 KiB at a time,
// pausing 1 ms every 256 KiB). asio::async_write of 4 MiB completes with
// success and 4 MiB, after writes that the kernel cut short (counted through
// the completion condition), and the reader gets every byte in order.
BOOST_AUTO_TEST_CASE(short_writes_deliver_every_byte_in_order)
{
  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  unique_fd client = raw_connect(acceptor.local_endpoint().port(), 4096);
  BOOST_TEST_REQUIRE(static_cast<bool>(client));
  tcp::socket server(ctx);
  acceptor.accept(server);
  server.set_option(asio::socket_base::send_buffer_size(4096));
  asio::socket_base::send_buffer_size got_sndbuf;
  server.get_option(got_sndbuf);
  BOOST_TEST_MESSAGE("SO_SNDBUF is " << got_sndbuf.value());

  constexpr std::size_t total = 4 * 1024 * 1024;
  constexpr std::size_t max_step = 65536;
  const std::vector<char> data = pattern(total, 4);

  // Each call after the first sees how far the previous write_some got: a
  // step shorter than it asked for (min(max_step, what was left)) is a
  // short write.
  std::size_t last = 0, steps = 0, short_steps = 0;
  error_code result;
  std::size_t written = npos;
  asio::async_write(server, asio::buffer(data),
      [&](const error_code& ec, std::size_t n) -> std::size_t {
        if (n > 0 || ec)
        {
          ++steps;
          if (n - last < std::min(max_step, total - last) && !ec)
            ++short_steps;
        }
        last = n;
        return ec ? 0 : max_step;
      },
      [&](error_code ec, std::size_t n) {
        result = ec;
        written = n;
      });

  std::atomic<std::size_t> received{0};
  std::atomic<std::size_t> mismatch{npos};
  std::thread reader([&] {
    std::vector<char> in(4096);
    std::size_t got = 0, since_pause = 0;
    while (got < total)
    {
      ssize_t r = ::recv(client.get(), in.data(), std::min(in.size(), total - got), 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      std::size_t m = first_mismatch(in.data(), static_cast<std::size_t>(r), 4, got);
      if (m != npos && mismatch.load() == npos)
        mismatch = m;
      got += static_cast<std::size_t>(r);
      since_pause += static_cast<std::size_t>(r);
      if (since_pause >= 256 * 1024)
      {
        since_pause = 0;
        std::this_thread::sleep_for(1ms);
      }
    }
    received = got;
  });
  zokio_test::run_bounded(ctx, 15s);
  reader.join();

  BOOST_TEST_MESSAGE(steps << " write steps, " << short_steps << " of them short");
  BOOST_TEST(!result, describe(result));
  BOOST_TEST(written == total);
  BOOST_TEST(received.load() == total);
  BOOST_TEST(mismatch.load() == npos, "first wrong byte at offset " << mismatch.load());
  BOOST_TEST(short_steps > 0u, "no write was cut short: the fault was not produced");
}

//------------------------------------------------------------------------------
// 5. EMFILE during accept: with RLIMIT_NOFILE lowered to the descriptors in
// use and every free slot below it taken, a connection waits in the listen
// backlog. What zokio does (the documented behaviour, checked here on every
// backend): the pending async_accept completes at once with
// asio::error::no_descriptors (it is not kept pending), the connection stays
// in the backlog, and once descriptors are freed the next async_accept
// returns that very connection (its bytes are read back), and a new
// connection is accepted after it. The limit is restored on every path.
namespace {

// The highest descriptor the process has open (the listing's own excepted).
int highest_open_fd()
{
  int highest = -1;
  if (DIR* d = ::opendir("/proc/self/fd"))
  {
    const int own = ::dirfd(d);
    while (::dirent* e = ::readdir(d))
    {
      if (e->d_name[0] == '.')
        continue;
      int fd = std::atoi(e->d_name);
      if (fd != own)
        highest = std::max(highest, fd);
    }
    ::closedir(d);
  }
  return highest;
}

// Lowers RLIMIT_NOFILE's soft limit and takes every free descriptor below
// it; release() (or the destructor) gives both back.
class descriptor_exhaustion
{
public:
  descriptor_exhaustion()
  {
    settle_libkqueue();
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    ::rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 1);
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0)
    {
      setrlimit_errno_ = errno;
      return;
    }
    lowered_ = true;
    for (int i = 0; i < 100000; ++i)
    {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0)
      {
        fill_errno_ = errno;
        break;
      }
      fillers_.push_back(fd);
    }
    // The probe: a socket cannot be made now.
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s >= 0)
      ::close(s);
    else
      probe_errno_ = errno;
  }
  ~descriptor_exhaustion() { release(); }
  descriptor_exhaustion(const descriptor_exhaustion&) = delete;
  descriptor_exhaustion& operator=(const descriptor_exhaustion&) = delete;

  void release()
  {
    for (int fd : fillers_)
      ::close(fd);
    fillers_.clear();
    if (lowered_)
    {
      ::setrlimit(RLIMIT_NOFILE, &saved_);
      lowered_ = false;
    }
  }

  int setrlimit_errno() const { return setrlimit_errno_; }
  int fill_errno() const { return fill_errno_; }
  int probe_errno() const { return probe_errno_; }
  std::size_t fillers() const { return fillers_.size(); }

private:
  ::rlimit saved_{};
  bool lowered_ = false;
  int setrlimit_errno_ = 0, fill_errno_ = 0, probe_errno_ = 0;
  std::vector<int> fillers_;
};

} // namespace

BOOST_AUTO_TEST_CASE(emfile_during_accept_then_accepting_again)
{
  ::rlimit before{};
  ::getrlimit(RLIMIT_NOFILE, &before);

  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  const unsigned short port = acceptor.local_endpoint().port();
  // Connected (in the backlog) before the descriptors run out.
  unique_fd first_client = raw_connect(port);
  BOOST_TEST_REQUIRE(static_cast<bool>(first_client));
  BOOST_TEST_REQUIRE(send_all(first_client.get(), "hello", 5));

  std::optional<descriptor_exhaustion> exhaustion;
  zokio::steady_timer timer(ctx);
  int setrlimit_errno = 0, fill_errno = 0, probe_errno = 0;
  std::size_t fillers = 0;
  int first_calls = 0;
  error_code first_ec, second_ec, read_ec, third_ec;
  bool first_before_timer = false, pending = false;
  tcp::socket second(ctx), third(ctx);
  char hello[5] = {};
  unique_fd late_client;

  // In a handler: the thread's ring (or epoll instance) exists by now.
  asio::post(ctx, [&] {
    exhaustion.emplace();
    setrlimit_errno = exhaustion->setrlimit_errno();
    fill_errno = exhaustion->fill_errno();
    probe_errno = exhaustion->probe_errno();
    fillers = exhaustion->fillers();
    acceptor.async_accept([&](error_code ec, tcp::socket s) {
      ++first_calls;
      first_ec = ec;
      if (!ec)
        second = std::move(s); // not expected; read below all the same
    });
    timer.expires_after(300ms);
    timer.async_wait([&](error_code) {
      first_before_timer = first_calls > 0;
      pending = first_calls == 0;
      exhaustion->release();
      if (pending)
      {
        // Kept pending: it must complete now that descriptors are free; if
        // it does not within 2 s, cancel it so that the case ends.
        timer.expires_after(2s);
        timer.async_wait([&](error_code ec) {
          if (!ec)
            acceptor.cancel();
        });
        return;
      }
      acceptor.async_accept(second, [&](error_code ec) {
        second_ec = ec;
        if (ec)
          return;
        asio::async_read(second, asio::buffer(hello), [&](error_code ec, std::size_t) {
          read_ec = ec;
          // A new connection after the recovery.
          late_client = raw_connect(port);
          acceptor.async_accept(third, [&](error_code ec) { third_ec = ec; });
        });
      });
    });
  });
  zokio_test::run_bounded(ctx, 10s);
  exhaustion.reset();

  ::rlimit after{};
  ::getrlimit(RLIMIT_NOFILE, &after);
  BOOST_TEST(after.rlim_cur == before.rlim_cur);
  BOOST_TEST_REQUIRE(setrlimit_errno == 0, "setrlimit: " << std::strerror(setrlimit_errno));
  BOOST_TEST_MESSAGE(fillers << " free descriptors taken; a new socket then failed with "
      << (probe_errno ? std::strerror(probe_errno) : "nothing"));
  BOOST_TEST_REQUIRE(fill_errno == EMFILE, "filling the table ended with " << std::strerror(fill_errno));
  BOOST_TEST_REQUIRE(probe_errno == EMFILE);

  BOOST_TEST_MESSAGE("accept under EMFILE: " << (pending ? "kept pending" : "completed with " + describe(first_ec)));
  BOOST_TEST(!pending, "zokio kept the accept pending instead of completing it with an error");
  BOOST_TEST(first_calls == 1);
  BOOST_TEST(first_before_timer);
  BOOST_TEST(first_ec == asio::error::no_descriptors, "expected no_descriptors (EMFILE), got " << describe(first_ec));
  BOOST_TEST(!second_ec, "accept after the recovery: " << describe(second_ec));
  BOOST_TEST(!read_ec, describe(read_ec));
  BOOST_TEST(std::string(hello, 5) == "hello", "the connection from the backlog is not the one that was waiting");
  BOOST_TEST(static_cast<bool>(late_client));
  BOOST_TEST(!third_ec, "accept of a new connection after the recovery: " << describe(third_ec));
  BOOST_TEST(third.is_open());
}

// ENFILE (the system-wide file table full) cannot be produced without
// lowering fs.file-max for the whole machine, which a test must not do.
namespace {
boost::test_tools::assertion_result enfile_can_be_produced(boost::unit_test::test_unit_id)
{
  boost::test_tools::assertion_result r(false);
  r.message() << "ENFILE needs the system-wide file table full (fs.file-max lowered for the whole "
                 "machine); not done by a test. The EMFILE case covers the same accept path.";
  return r;
}
} // namespace

BOOST_AUTO_TEST_CASE(enfile_during_accept, *boost::unit_test::precondition(enfile_can_be_produced))
{
  BOOST_ERROR("unreachable: the precondition always skips this case");
}

//------------------------------------------------------------------------------
// 6. A slow client that reads nothing while others are served, on one
// io_context thread: an 8 MiB asio::async_write to it blocks (its buffers
// fill), bounded by zokio::timeout (1 s); meanwhile 4 other clients make 100
// echo round trips (64 bytes, verified) in turn, each within 250 ms, all
// while the slow write is still blocked. The slow write then ends with
// asio::error::timed_out, after about 1 s.
BOOST_AUTO_TEST_CASE(slow_client_does_not_hold_up_the_others)
{
  zokio::io_context ctx;
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  const unsigned short port = acceptor.local_endpoint().port();

  unique_fd slow_client = raw_connect(port);
  BOOST_TEST_REQUIRE(static_cast<bool>(slow_client));
  tcp::socket slow_server(ctx);
  acceptor.accept(slow_server);
  constexpr int others = 4;
  std::vector<unique_fd> clients;
  std::vector<tcp::socket> servers;
  for (int i = 0; i < others; ++i)
  {
    clients.push_back(raw_connect(port));
    BOOST_TEST_REQUIRE(static_cast<bool>(clients.back()));
    servers.emplace_back(ctx);
    acceptor.accept(servers.back());
  }

  constexpr std::size_t big = 8 * 1024 * 1024;
  const std::vector<char> data = pattern(big, 6);
  std::atomic<int> echo_errors{0};
  std::atomic<bool> slow_done{false};
  error_code slow_ec;
  std::string slow_other_failure;
  std::size_t slow_n = npos;
  double slow_ms = 0;
  const auto t0 = std::chrono::steady_clock::now();
  asio::post(ctx, [&] {
    zokio::timeout(asio::async_write(slow_server, asio::buffer(data), zokio::use_future), 1s)
        .then([&](std::exception_ptr e, std::size_t n) {
          slow_ms = zokio_test::ms_since(t0);
          slow_n = n;
          try
          {
            if (e)
              std::rethrow_exception(e);
          }
          catch (const boost::system::system_error& x)
          {
            slow_ec = x.code();
          }
          catch (const std::exception& x)
          {
            slow_other_failure = x.what();
          }
          slow_done = true;
        });
    for (auto& s : servers)
      std::make_shared<echo_session>(std::move(s), echo_errors)->read();
  });

  constexpr int round_trips = 100;
  std::atomic<int> completed{0}, wrong{0};
  std::atomic<double> worst_ms{0};
  std::atomic<bool> slow_done_during{true};
  std::thread others_thread([&] {
    std::this_thread::sleep_for(100ms); // the slow write has filled the buffers
    double worst = 0;
    for (int i = 0; i < round_trips; ++i)
    {
      int fd = clients[static_cast<std::size_t>(i % others)].get();
      const std::vector<char> out = pattern(64, 100 + static_cast<unsigned>(i));
      std::vector<char> in(64);
      const auto t = std::chrono::steady_clock::now();
      if (!send_all(fd, out.data(), out.size()) || !recv_all(fd, in.data(), in.size()))
        break;
      worst = std::max(worst, zokio_test::ms_since(t));
      if (in != out)
        wrong.fetch_add(1);
      completed.fetch_add(1);
    }
    worst_ms = worst;
    slow_done_during = slow_done.load();
    for (auto& c : clients)
    {
      ::shutdown(c.get(), SHUT_WR);
      c.reset();
    }
  });
  zokio_test::run_bounded(ctx, 10s);
  others_thread.join();

  BOOST_TEST_MESSAGE(completed.load() << " round trips, the slowest " << worst_ms.load() << " ms; the slow write ended after "
      << slow_ms << " ms with " << describe(slow_ec) << slow_other_failure);
  BOOST_TEST(completed.load() == round_trips);
  BOOST_TEST(wrong.load() == 0);
  BOOST_TEST(echo_errors.load() == 0);
  BOOST_TEST(worst_ms.load() < 250.0, "a round trip took " << worst_ms.load() << " ms");
  BOOST_TEST(!slow_done_during.load(), "the slow write was not blocked while the others were served");
  BOOST_TEST(slow_done.load());
  BOOST_TEST(slow_other_failure.empty(), slow_other_failure);
  BOOST_TEST(slow_ec == asio::error::timed_out, "expected timed_out, got " << describe(slow_ec));
  BOOST_TEST(slow_ms >= 950.0);
  BOOST_TEST(slow_ms < 5000.0);
}

//------------------------------------------------------------------------------
// 7. Tiny rings under a real echo load: an io_context(1, ring_options{2, 2})
// (on io_uring: 2 submission and 2 completion queue entries, so the SQ is
// full and the CQ overflows constantly; on epoll and kqueue: 2 events per
// wait) runs an acceptor, 64 echo sessions and 64 clients that each write
// 128 KiB and read it back concurrently: every byte comes back, in order.
BOOST_AUTO_TEST_CASE(tiny_rings_under_an_echo_load)
{
  zokio::io_context ctx(1, zokio::ring_options{2, 2});
  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  const auto ep = acceptor.local_endpoint();
  constexpr int conns = 64;
  constexpr std::size_t per = 128 * 1024;

  std::atomic<int> server_errors{0};
  int accepted = 0;
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](error_code ec, tcp::socket s) {
      if (ec)
      {
        server_errors.fetch_add(1);
        return;
      }
      std::make_shared<echo_session>(std::move(s), server_errors)->read();
      if (++accepted < conns)
        accept_next();
    });
  };
  accept_next();

  struct client
  {
    explicit client(zokio::io_context& ctx, unsigned seed) : socket(ctx), out(pattern(per, seed)), in(per) {}
    tcp::socket socket;
    std::vector<char> out, in;
    int done = 0;
  };
  std::vector<std::unique_ptr<client>> clients;
  int client_errors = 0, verified = 0, corrupted = 0;
  error_code first_error;
  auto fail = [&](error_code ec) {
    if (!first_error)
      first_error = ec;
    ++client_errors;
  };
  for (int c = 0; c < conns; ++c)
  {
    clients.push_back(std::make_unique<client>(ctx, 700 + static_cast<unsigned>(c)));
    client* p = clients.back().get();
    p->socket.async_connect(ep, [&, p](error_code ec) {
      if (ec)
        return fail(ec);
      auto finish = [p] {
        if (++p->done == 2)
          p->socket.close();
      };
      asio::async_write(p->socket, asio::buffer(p->out), [&, p, finish](error_code ec, std::size_t n) {
        if (ec || n != per)
          fail(ec);
        finish();
      });
      asio::async_read(p->socket, asio::buffer(p->in), [&, p, finish](error_code ec, std::size_t n) {
        if (ec || n != per)
          fail(ec);
        else if (p->in == p->out)
          ++verified;
        else
          ++corrupted;
        finish();
      });
    });
  }
  zokio_test::run_bounded(ctx, 20s);

  const zokio::statistics s = ctx.statistics();
  BOOST_TEST_MESSAGE("backend " << zokio::to_string(s.backend) << ": " << s.submissions << " submissions, "
      << s.completions << " completions, " << s.kernel_entries << " kernel entries, largest batch " << s.max_batch);
  BOOST_TEST(accepted == conns);
  BOOST_TEST(verified == conns);
  BOOST_TEST(corrupted == 0);
  BOOST_TEST(client_errors == 0, "first client error: " << describe(first_error));
  BOOST_TEST(server_errors.load() == 0);
}

//------------------------------------------------------------------------------
// 8. Cancellation racing completion, from another thread: a thread_pool(2)
// runs the operations (each started by a handler posted to it); once one has
// started, the test thread either makes it complete where that needs a
// peer (a byte, a connection, room to write), busy-waits 0 to 99 us and
// calls cancel() on the object, or cancels first and then makes it
// complete (even and odd iterations). 2000 times for each of async_read_some,
// async_write_some, async_accept, async_connect and a steady_timer wait.
// Each handler runs exactly once, with success or operation_aborted; an
// aborted read or write has transferred nothing, and no byte or connection
// is lost: what the aborted reads left behind, and the connections the
// aborted accepts left, are there afterwards. The process holds as many
// descriptors afterwards as before (zokio_test::open_fds: every descriptor,
// or the internet sockets alone on libkqueue, which frees its own lazily).
namespace {

constexpr int race_iterations = 2000;

struct race_outcome
{
  int ok = 0;
  int aborted = 0;
  int other = 0;
  int not_once = 0;    // handlers that ran zero times or more than once
  int hung = 0;
  error_code first_other;
};

// Busy-waits for us microseconds.
void spin(int us)
{
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until)
  {
  }
}

// The race, `iterations` times: start(i, done) runs on the pool and starts
// an operation whose handler calls done(ec) once; the test thread waits
// until it has started, then calls trigger(i) and cancel() in an order and
// with a spin that vary with i, waits (at most 5 s) for the handler, and
// calls after(i, ec).
template <typename Start, typename Trigger, typename Cancel, typename After>
race_outcome race(zokio::thread_pool& pool, int iterations, Start start, Trigger trigger, Cancel cancel, After after)
{
  race_outcome r;
  std::vector<std::atomic<int>> calls(static_cast<std::size_t>(iterations));
  std::vector<error_code> results(static_cast<std::size_t>(iterations));
  std::atomic<int> started{-1};
  for (int i = 0; i < iterations; ++i)
  {
    const std::size_t k = static_cast<std::size_t>(i);
    asio::post(pool, [&, i, k] {
      start(i, [&calls, &results, k](error_code ec) {
        results[k] = ec;
        calls[k].fetch_add(1, std::memory_order_release);
      });
      started.store(i, std::memory_order_release);
    });
    if (!wait_until([&] { return started.load(std::memory_order_acquire) == i; }))
    {
      ++r.hung;
      break;
    }
    // 0 to 99 us between the two: about the time a sleeping worker takes
    // to wake up for a cancellation handed to it.
    const int s = (i * 7919) % 100;
    if (i % 2 == 0)
    {
      trigger(i);
      spin(s);
      cancel();
    }
    else
    {
      cancel();
      spin(s);
      trigger(i);
    }
    if (!wait_until([&] { return calls[k].load(std::memory_order_acquire) > 0; }))
    {
      ++r.hung;
      break;
    }
    const error_code ec = results[k];
    if (!ec)
      ++r.ok;
    else if (ec == asio::error::operation_aborted)
      ++r.aborted;
    else
    {
      if (!r.other)
        r.first_other = ec;
      ++r.other;
    }
    after(i, ec);
  }
  // A second call would come soon after the first.
  std::this_thread::sleep_for(20ms);
  for (int i = 0; i < iterations; ++i)
    if (calls[static_cast<std::size_t>(i)].load(std::memory_order_acquire) != 1)
      ++r.not_once;
  return r;
}

void check_race(const char* what, const race_outcome& r, int iterations)
{
  BOOST_TEST_MESSAGE(what << ": " << r.ok << " succeeded, " << r.aborted << " aborted, " << r.other
      << " other errors, " << r.not_once << " handlers not run exactly once, " << r.hung << " hung");
  BOOST_TEST(r.hung == 0, what << ": an operation did not complete within 5 s");
  BOOST_TEST(r.not_once == 0, what << ": handlers not run exactly once");
  BOOST_TEST(r.other == 0, what << ": other error " << describe(r.first_other));
  BOOST_TEST(r.ok + r.aborted == iterations, what);
}

// Reads what is left on fd (no zokio operation pending on it) until `want`
// bytes have come, for at most 5 s; appends them to out.
void drain(int fd, std::string& out, std::size_t want)
{
  const auto until = std::chrono::steady_clock::now() + 5s;
  char buf[4096];
  while (out.size() < want && std::chrono::steady_clock::now() < until)
  {
    ::pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0)
      continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0)
      out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0)
      break;
  }
}

// Appends what can be read from fd without waiting.
void drain_available(int fd, std::string& out)
{
  char buf[4096];
  for (;;)
  {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0)
      return;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(cancellation_racing_completion_from_another_thread)
{
  const std::size_t fds_before = zokio_test::open_fds();
  const int n = race_iterations;
  {
    zokio::thread_pool pool(2);

    // async_read_some: the byte is sent from the peer while cancel() comes.
    {
      auto [a, b] = zokio_test::connected_pair(pool);
      std::string stream, expected;
      char rbuf[64];
      int aborted_with_bytes = 0;
      race_outcome r = race(pool, n,
          [&](int, auto done) {
            a.async_read_some(asio::buffer(rbuf), [&, done](error_code ec, std::size_t got) {
              if (!ec)
                stream.append(rbuf, got);
              else if (got != 0)
                ++aborted_with_bytes;
              done(ec);
            });
          },
          [&](int i) {
            const char c = static_cast<char>(pattern_byte(static_cast<std::size_t>(i), 8));
            expected.push_back(c);
            ::send(b.native_handle(), &c, 1, MSG_NOSIGNAL);
          },
          [&] { a.cancel(); },
          [&](int, error_code ec) {
            // An aborted read leaves its byte in the socket: taken here, so
            // that the next read does not find data waiting.
            if (ec)
              drain(a.native_handle(), stream, expected.size());
          });
      check_race("async_read_some", r, n);
      BOOST_TEST(aborted_with_bytes == 0);
      // The bytes the aborted reads did not take are still in the socket.
      drain(a.native_handle(), stream, expected.size());
      BOOST_TEST(stream.size() == expected.size());
      BOOST_TEST((stream == expected), "async_read_some: the bytes read differ from those sent");
    }

    // async_write_some: the writer's SO_SNDBUF and the peer's SO_RCVBUF are
    // 4 KiB and the peer drains only every 32nd iteration (the trigger,
    // while cancel() comes), so a write either completes at once, or waits
    // for room until the drain or the cancellation ends it.
    {
      auto [a, b] = zokio_test::connected_pair(pool);
      a.set_option(asio::socket_base::send_buffer_size(4096));
      b.set_option(asio::socket_base::receive_buffer_size(4096));
      std::string received, expected;
      std::vector<char> wbuf(512);
      std::size_t last_n = 0;
      int aborted_with_bytes = 0;
      race_outcome r = race(pool, n,
          [&](int i, auto done) {
            for (std::size_t j = 0; j < wbuf.size(); ++j)
              wbuf[j] = static_cast<char>(pattern_byte(j, 9 + static_cast<unsigned>(i)));
            a.async_write_some(asio::buffer(wbuf), [&, done](error_code ec, std::size_t written) {
              last_n = written;
              if (ec && written != 0)
                ++aborted_with_bytes;
              done(ec);
            });
          },
          [&](int i) {
            if (i % 32 == 31)
              drain_available(b.native_handle(), received);
          },
          [&] { a.cancel(); },
          [&](int, error_code ec) {
            if (!ec)
              expected.append(wbuf.data(), last_n);
          });
      check_race("async_write_some", r, n);
      BOOST_TEST(aborted_with_bytes == 0);
      drain(b.native_handle(), received, expected.size());
      BOOST_TEST(received.size() == expected.size());
      BOOST_TEST((received == expected), "async_write_some: the bytes received differ from those written");
    }

    // async_accept: a client connects while cancel() comes. The connection
    // an aborted accept did not take is accepted right after it (so that the
    // next accept does not find one waiting), and must be there.
    {
      tcp::acceptor acceptor(pool, zokio_test::loopback_v4());
      const unsigned short port = acceptor.local_endpoint().port();
      std::atomic<int> accepted{0};
      int connected = 0, connect_failures = 0, late = 0, late_failures = 0;
      // One accept, bounded (2 s); true if it got a connection.
      auto accept_one = [&] {
        std::atomic<int> done{0};
        error_code ec;
        asio::post(pool, [&] {
          acceptor.async_accept([&](error_code e, tcp::socket) {
            ec = e;
            done.store(1, std::memory_order_release);
          });
        });
        if (!wait_until([&] { return done.load(std::memory_order_acquire) == 1; }, 2s))
        {
          acceptor.cancel();
          wait_until([&] { return done.load(std::memory_order_acquire) == 1; });
          return false;
        }
        return !ec;
      };
      race_outcome r = race(pool, n,
          [&](int, auto done) {
            acceptor.async_accept([&, done](error_code ec, tcp::socket) {
              if (!ec)
                accepted.fetch_add(1);
              done(ec);
            });
          },
          [&](int) {
            // Closed at once: the connection stays acceptable.
            if (unique_fd c = raw_connect(port))
              ++connected;
            else
              ++connect_failures;
          },
          [&] { acceptor.cancel(); },
          [&](int, error_code ec) {
            if (ec && late + accepted.load() < connected)
              (accept_one() ? late : late_failures)++;
          });
      check_race("async_accept", r, n);
      BOOST_TEST(connect_failures == 0);
      BOOST_TEST_MESSAGE("async_accept: " << connected << " connections, " << accepted.load()
          << " accepted in the race, " << late << " after an aborted accept");
      BOOST_TEST(late_failures == 0, "async_accept: a connection left by an aborted accept was not there");
      BOOST_TEST(accepted.load() + late == connected, "async_accept: connections lost");
      // Nothing more is waiting.
      ::pollfd p{acceptor.native_handle(), POLLIN, 0};
      BOOST_TEST(::poll(&p, 1, 0) == 0);
    }

    // async_connect: a loopback connect completes at once; cancel() comes
    // meanwhile. The socket is opened by the starting handler and closed
    // after each iteration; the listener is a plain socket, drained after
    // each.
    {
      unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      ::sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::socklen_t len = sizeof a;
      BOOST_TEST_REQUIRE(::bind(listener.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a) == 0);
      BOOST_TEST_REQUIRE(::listen(listener.get(), 4096) == 0);
      ::getsockname(listener.get(), reinterpret_cast<::sockaddr*>(&a), &len);
      const tcp::endpoint ep(asio::ip::address_v4::loopback(), ntohs(a.sin_port));
      tcp::socket s(pool);
      int taken = 0;
      race_outcome r = race(pool, n,
          [&](int, auto done) {
            s.open(tcp::v4());
            s.async_connect(ep, [done](error_code ec) { done(ec); });
          },
          [](int) {}, [&] { s.cancel(); },
          [&](int, error_code) {
            s.close();
            for (;;)
            {
              int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
              if (c < 0)
                break;
              ::close(c);
              ++taken;
            }
          });
      check_race("async_connect", r, n);
      BOOST_TEST_MESSAGE("async_connect: the listener took " << taken << " connections");
    }

    // A steady_timer wait that expires within 0-49 us; cancel() comes
    // meanwhile.
    {
      zokio::steady_timer t(pool);
      race_outcome r = race(pool, n,
          [&](int i, auto done) {
            t.expires_after(std::chrono::microseconds(i % 50));
            t.async_wait([done](error_code ec) { done(ec); });
          },
          [](int) {}, [&] { t.cancel(); }, [](int, error_code) {});
      check_race("steady_timer::async_wait", r, n);
    }
    // Bounded: a pool still holding work after 10 s is stopped (and the
    // case fails) instead of hanging in join().
    std::atomic<bool> joined{false}, stopped{false};
    std::thread watchdog([&] {
      if (!wait_until([&] { return joined.load(); }, 10s))
      {
        stopped = true;
        pool.stop();
      }
    });
    pool.join();
    joined = true;
    watchdog.join();
    BOOST_TEST(!stopped.load(), "the pool still had work 10 s after the races");
  }
  const std::size_t fds_after = zokio_test::open_fds();
  BOOST_TEST_MESSAGE("descriptors " << fds_before << " -> " << fds_after);
  BOOST_TEST(fds_after == fds_before, "descriptors leaked");
}

//------------------------------------------------------------------------------
// 9. RLIMIT_MEMLOCK lowered for real before the first context: a child,
// forked, sets RLIMIT_MEMLOCK to {0, 0} and executes this program afresh
// (/proc/self/exe) to run the case rlimit_memlock_child alone, so that its
// first zokio context chooses the backend under that limit. The child checks
// the limit, reports the backend (on kernels since 5.12 io_uring's rings
// are charged to the memory cgroup, not to RLIMIT_MEMLOCK, so io_uring
// works; before, zokio falls back to epoll), and echoes 1 MiB byte-exact
// over loopback; its exit status (Boost.Test's: 0 when every check passed)
// is checked here. Under ZOKIO_BACKEND (the @epoll and @kqueue runs) the
// child runs on the forced backend.
namespace {

// The child's output (stdout and stderr) and wait status; nullopt status if
// it did not end within limit (it is killed then).
struct child_run
{
  std::string output;
  std::optional<int> status;
};

child_run run_memlock_child(std::chrono::milliseconds limit)
{
  child_run out;
  settle_libkqueue();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return out;
  pid_t pid = ::fork();
  if (pid < 0)
  {
    ::close(p[0]);
    ::close(p[1]);
    return out;
  }
  if (pid == 0)
  {
    // Only async-signal-safe calls until exec.
    ::rlimit rl{0, 0};
    if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
      ::_exit(90);
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    char exe[] = "/proc/self/exe";
    char run[] = "--run_test=rlimit_memlock_child";
    char log[] = "--log_level=message";
    char color[] = "--color_output=no";
    char* argv[] = {exe, run, log, color, nullptr};
    ::execv(exe, argv);
    ::_exit(91);
  }
  forked_child child(pid);
  ::close(p[1]);
  unique_fd from(p[0]);
  const auto until = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  for (;;)
  {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return out; // the child is killed by forked_child
    ::pollfd pf{from.get(), POLLIN, 0};
    int r = ::poll(&pf, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      continue;
    ssize_t n = ::read(from.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.output.append(buf, static_cast<std::size_t>(n));
  }
  out.status = child.wait(limit);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(rlimit_memlock_lowered_before_the_first_context)
{
  child_run r = run_memlock_child(20s);
  BOOST_TEST_MESSAGE("child output:\n" << r.output);
  BOOST_TEST_REQUIRE(r.status.has_value(), "the child did not end within 20 s");
  const int st = *r.status;
  BOOST_TEST(WIFEXITED(st), "the child ended with signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0));
  BOOST_TEST(WEXITSTATUS(st) != 90, "setrlimit(RLIMIT_MEMLOCK, {0, 0}) failed in the child");
  BOOST_TEST(WEXITSTATUS(st) != 91, "the child could not execute /proc/self/exe");
  BOOST_TEST(WEXITSTATUS(st) == 0, "the child failed (exit status " << WEXITSTATUS(st) << ")");
  const auto at = r.output.find("memlock child: backend ");
  BOOST_TEST(at != std::string::npos, "the child did not report its backend");
  if (at != std::string::npos)
    BOOST_TEST_MESSAGE(r.output.substr(at, r.output.find('\n', at) - at));
  BOOST_TEST(r.output.find("memlock child: 1 MiB echoed") != std::string::npos);
}

// The child's half of case 9: run alone by run_memlock_child, never with
// the rest of the suite (disabled: run only when named by --run_test).
BOOST_AUTO_TEST_CASE(rlimit_memlock_child, *boost::unit_test::disabled())
{
  ::rlimit rl{};
  ::getrlimit(RLIMIT_MEMLOCK, &rl);
  BOOST_TEST_REQUIRE(rl.rlim_cur == 0u, "RLIMIT_MEMLOCK is " << rl.rlim_cur << ": not run by the parent case");

  // The first zokio context of this process chooses the backend.
  zokio::io_context ctx;
  const zokio::backend_choice& choice = zokio::current_backend();
  std::printf("memlock child: backend %s (%s), RLIMIT_MEMLOCK %llu/%llu\n", zokio::to_string(choice.backend),
      choice.reason.c_str(), static_cast<unsigned long long>(rl.rlim_cur),
      static_cast<unsigned long long>(rl.rlim_max));
  std::fflush(stdout);

  tcp::acceptor acceptor(ctx, zokio_test::loopback_v4());
  tcp::socket client(ctx), server(ctx);
  constexpr std::size_t total = 1024 * 1024;
  const std::vector<char> out = pattern(total, 10);
  std::vector<char> back(total);
  std::vector<char> relay(total);
  error_code ec_accept, ec_connect, ec_write, ec_read, ec_relay_read, ec_relay_write;
  std::size_t n_back = 0;
  acceptor.async_accept(server, [&](error_code ec) {
    ec_accept = ec;
    if (ec)
      return;
    // The server side echoes all of it: read 1 MiB, write it back.
    asio::async_read(server, asio::buffer(relay), [&](error_code ec, std::size_t) {
      ec_relay_read = ec;
      if (!ec)
        asio::async_write(server, asio::buffer(relay), [&](error_code ec, std::size_t) { ec_relay_write = ec; });
    });
  });
  client.async_connect(acceptor.local_endpoint(), [&](error_code ec) {
    ec_connect = ec;
    if (ec)
      return;
    asio::async_write(client, asio::buffer(out), [&](error_code ec, std::size_t) { ec_write = ec; });
    asio::async_read(client, asio::buffer(back), [&](error_code ec, std::size_t n) {
      ec_read = ec;
      n_back = n;
    });
  });
  zokio_test::run_bounded(ctx, 10s);

  BOOST_TEST((ctx.statistics().backend == choice.backend));
  BOOST_TEST(!ec_accept, describe(ec_accept));
  BOOST_TEST(!ec_connect, describe(ec_connect));
  BOOST_TEST(!ec_write, describe(ec_write));
  BOOST_TEST(!ec_relay_read, describe(ec_relay_read));
  BOOST_TEST(!ec_relay_write, describe(ec_relay_write));
  BOOST_TEST(!ec_read, describe(ec_read));
  BOOST_TEST(n_back == total);
  const bool same = back == out;
  BOOST_TEST(same, "the echoed MiB differs");
  if (same && n_back == total)
    std::printf("memlock child: 1 MiB echoed byte-exact\n");
  std::fflush(stdout);
}
