// TCP echo load generator: one thread, one io_uring, batched submission.
//
//   perf_loadgen --port P [--host 127.0.0.1] --conns C --size S --inflight K
//                --duration SEC --warmup SEC [--server-pid PID]
//   perf_loadgen --port P --idle N [--hold-ms MS] [--per-source K]
//   perf_loadgen --port P --churn K --duration SEC --warmup SEC [--server-pid PID]
//
// Load mode. C connections each keep K messages of S bytes in flight
// (pipelining): every echoed message is answered by the next one. The bytes a
// connection sends are a slice of one random pattern, starting at a
// per-connection offset, so the expected echo of any byte range is known
// without bookkeeping; every received chunk is compared with memcmp, and a
// mismatch, a closed connection or an error ends the program with exit code 3.
//
// Run-loop: handle every completion of the batch (verify, record latency,
// queue the next sends and receives), then one io_uring_submit_and_wait. One
// send and one receive at most are in flight per connection; a send carries
// every byte that is due at that moment.
//
// Phases: warm-up (nothing recorded), measurement window (latency histogram,
// message count, own CPU time and the server's utime+stime from
// /proc/<pid>/stat), then drain: no new messages, wait until every message
// sent has come back and was verified.
//
// Idle mode (for idle_memory): opens N connections, echoes one 16-byte message
// on each, prints {"ready":true,...} and holds them open for MS milliseconds.
// More than K connections (default 20,000) come from several loopback source
// addresses, K from each, so that N may exceed one address's ephemeral ports.
//
// Churn mode (for accept_churn): K connections at a time each connect, echo
// one 16-byte message (verified), and close with an RST (SO_LINGER 0: no
// TIME_WAIT, so the ephemeral ports last), then the slot starts the next one.
// Reported: connections per second, connect-to-echo latency percentiles and
// the server's CPU time per connection in the measurement window.
//
// Prints one JSON object on stdout.
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "bench.hpp"

namespace {

using perf::die;
using perf::now_ns;

// --- pattern -----------------------------------------------------------------------
// The expected byte at stream offset o of connection c is pattern[(c * 8191 + o) %
// pattern_len]. The buffer holds the pattern twice, so every range of up to
// pattern_len bytes is contiguous.
constexpr std::size_t pattern_len = 1 << 16;
std::vector<unsigned char> pattern;

void make_pattern() {
  pattern.resize(2 * pattern_len);
  std::mt19937_64 rng(0x7a6f6b696fULL);
  for (std::size_t i = 0; i < pattern_len; ++i) pattern[i] = static_cast<unsigned char>(rng());
  std::copy_n(pattern.begin(), pattern_len, pattern.begin() + pattern_len);
}

// --- latency histogram ---------------------------------------------------------------
// Log-linear buckets: 32 per power of two (< 3.2 % error), exact below 32 ns.
class histogram {
public:
  void record(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  double percentile(double p) const {
    if (total_ == 0) return NAN;
    auto target = std::uint64_t(std::ceil(p / 100.0 * double(total_)));
    target = std::max<std::uint64_t>(target, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= target) return std::min(double(value(i)), double(max_));
    }
    return double(max_);
  }

private:
  static std::size_t index(std::uint64_t v) {
    if (v < 32) return v;
    int e = 63 - __builtin_clzll(v);
    return std::size_t(e - 4) * 32 + ((v >> (e - 5)) & 31);
  }
  static std::uint64_t value(std::size_t i) {  // middle of bucket i
    if (i < 32) return i;
    int e = int(i / 32) + 4;
    std::uint64_t lo = (32 + i % 32) << (e - 5);
    return lo + ((std::uint64_t(1) << (e - 5)) >> 1);
  }
  std::array<std::uint64_t, 64 * 32> counts_{};
  std::uint64_t total_ = 0, max_ = 0;
};

// --- other process's CPU time ----------------------------------------------------------
// utime + stime of every thread of pid, in nanoseconds (clock-tick resolution).
std::uint64_t proc_cpu_ns(long pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  // Fields after "(comm)": 3 state ... 14 utime 15 stime.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  static const long hz = sysconf(_SC_CLK_TCK);
  return (utime + stime) * 1'000'000'000ULL / std::uint64_t(hz);
}

// --- sockets ---------------------------------------------------------------------
// source: 0 lets the kernel choose the source address; otherwise the
// connection is bound to that address (a loopback 127.x.y.z) with its port
// still chosen at connect time (IP_BIND_ADDRESS_NO_PORT), so that more
// connections than one address's ephemeral ports (about 28,000) can reach
// one server port.
int connect_to(const std::string& host, unsigned port, std::uint32_t source = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (source != 0) {
    int on = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on) != 0)
      die("setsockopt IP_BIND_ADDRESS_NO_PORT");
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(source);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) die("bind source address");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(std::uint16_t(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) die("bad --host (IPv4 address)");
  for (int attempt = 0;; ++attempt) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) break;
    if ((errno != ECONNREFUSED && errno != EAGAIN) || attempt > 50) {
      std::perror("connect");
      die("cannot connect to the server");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

[[noreturn]] void fail(const char* what, std::size_t conn, std::uint64_t offset) {
  std::fprintf(stderr, "loadgen: FAILED: %s (connection %zu, stream offset %llu)\n", what, conn,
               static_cast<unsigned long long>(offset));
  std::exit(3);
}

// --- run-loop ------------------------------------------------------------------------
// One pass of a run-loop: submits what is queued and waits (at most 100 ms, so
// the caller's clock checks keep running) for a completion, in one enter, then
// hands every CQE of the batch to complete(user_data, res).
template <class Complete>
void run_batch(io_uring& ring, Complete&& complete) {
  __kernel_timespec ts{0, 100'000'000};
  io_uring_cqe* cqe = nullptr;
  int r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR) {
    errno = -r;
    std::perror("io_uring_submit_and_wait_timeout");
    die("io_uring wait failed");
  }
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&ring, head, cqe) {
    ++seen;
    complete(cqe->user_data, cqe->res);
  }
  io_uring_cq_advance(&ring, seen);
}

// --- idle mode -----------------------------------------------------------------------
int idle_mode(const perf::options& o) {
  const std::string host = o.str("host", "127.0.0.1");
  const auto port = unsigned(o.num("port", 0));
  const auto n = std::size_t(o.num("idle", 1));
  const auto hold_ms = o.num("hold-ms", 0);
  std::vector<int> fds;
  fds.reserve(n);
  auto t0 = now_ns();
  unsigned char in[16];
  // In groups, so that one round trip serves many connections, and small
  // enough for the server's accept backlog.
  constexpr std::size_t group = 256;
  const auto per_source = std::size_t(std::max<std::int64_t>(1, o.num("per-source", 20000)));
  constexpr std::uint32_t loopback_source = 0x7f000001;  // 127.0.0.1
  for (std::size_t first = 0; first < n; first += group) {
    const std::size_t last = std::min(n, first + group);
    // Past --per-source connections (20,000), each further group of that
    // many comes from the next loopback source address (127.0.0.2,
    // 127.0.0.3...).
    for (std::size_t i = first; i < last; ++i)
      fds.push_back(connect_to(host, port, n > per_source ? loopback_source + std::uint32_t(i / per_source) : 0));
    for (std::size_t i = first; i < last; ++i) {
      const unsigned char* msg = pattern.data() + (i * 8191) % pattern_len;
      if (write(fds[i], msg, 16) != 16) fail("idle: write", i, 0);
    }
    for (std::size_t i = first; i < last; ++i) {
      const unsigned char* msg = pattern.data() + (i * 8191) % pattern_len;
      std::size_t got = 0;
      while (got < 16) {
        ssize_t r = read(fds[i], in + got, 16 - got);
        if (r <= 0) fail("idle: read", i, got);
        got += std::size_t(r);
      }
      if (std::memcmp(in, msg, 16) != 0) fail("idle: echoed bytes differ", i, 0);
    }
  }
  auto t1 = now_ns();
  perf::json_line().add("ready", true).add("conns", std::uint64_t(n))
      .add("connect_ms", double(t1 - t0) / 1e6).print();
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  for (int fd : fds) close(fd);
  return 0;
}

// --- load mode ---------------------------------------------------------------------
struct connection {
  int fd = -1;
  std::size_t index = 0;
  std::uint64_t seed = 0;          // pattern offset of stream byte 0
  std::uint64_t sent = 0;          // bytes the kernel has taken
  std::uint64_t due = 0;           // bytes of every message issued so far
  std::uint64_t received = 0;      // bytes received and verified
  std::uint64_t issued = 0;        // messages issued
  std::uint64_t done = 0;          // messages fully echoed
  bool send_busy = false, recv_busy = false;
  std::vector<std::uint64_t> sent_at;  // issue time of message m at [m % inflight]
  std::unique_ptr<unsigned char[]> rbuf;
};

constexpr std::size_t recv_buffer_size = 1 << 16;

// user_data: connection index << 1 | (1 for receive, 0 for send).
class load {
public:
  explicit load(const perf::options& o)
      : host_(o.str("host", "127.0.0.1")),
        port_(unsigned(o.num("port", 0))),
        size_(o.num("size", 64)),
        inflight_(o.num("inflight", 1)),
        duration_(o.real("duration", 5)),
        warmup_(o.real("warmup", 1)),
        server_pid_(long(o.num("server-pid", 0))),
        conns_(std::size_t(o.num("conns", 1))) {
    if (size_ == 0 || inflight_ == 0 || size_ * inflight_ > pattern_len / 2)
      die("--size x --inflight must be within 1 .. 32768 bytes");
    unsigned entries = 64;
    while (entries < 2 * conns_.size() + 16) entries *= 2;
    io_uring_params p{};
    p.flags = getenv("PERF_NO_DEFER") ? 0 : IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;  // linux 6.1
    if (io_uring_queue_init_params(entries, &ring_, &p) < 0) {
      p = io_uring_params{};
      if (int r = io_uring_queue_init_params(entries, &ring_, &p); r < 0) {
        errno = -r;
        std::perror("io_uring_queue_init_params");
        die("io_uring is not available");
      }
    }
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto& c = conns_[i];
      c.fd = connect_to(host_, port_);
      c.index = i;
      c.seed = (i * 8191) % pattern_len;
      c.sent_at.resize(inflight_);
      c.rbuf.reset(new unsigned char[recv_buffer_size]);
    }
  }
  ~load() {
    for (auto& c : conns_)
      if (c.fd >= 0) close(c.fd);
    io_uring_queue_exit(&ring_);
  }

  int run() {
    const auto t_start = now_ns();
    const auto t_measure = t_start + std::uint64_t(warmup_ * 1e9);
    const auto t_stop = t_measure + std::uint64_t(duration_ * 1e9);
    now_ = t_start;
    for (auto& c : conns_) {
      for (std::uint64_t k = 0; k < inflight_; ++k) issue(c);
      arm_send(c);
      arm_recv(c);
    }
    enum { warmup, measure, drain } phase = warmup;
    std::uint64_t m_msgs0 = 0, m_cpu0 = 0, m_srv0 = 0, m_t0 = 0, m_enter0 = 0;
    std::uint64_t m_msgs1 = 0, m_cpu1 = 0, m_srv1 = 0, m_t1 = 0, m_enter1 = 0;
    std::uint64_t drain_deadline = 0;
    for (;;) {
      run_batch(ring_, [this](std::uint64_t data, int res) { complete(data, res); });
      ++kernel_entries_;
      now_ = now_ns();

      if (phase == warmup && now_ >= t_measure) {
        phase = measure;
        recording_ = true;
        m_msgs0 = messages_;
        m_cpu0 = perf::process_cpu_ns();
        m_srv0 = proc_cpu_ns(server_pid_);
        m_t0 = now_;
        m_enter0 = kernel_entries_;
      } else if (phase == measure && now_ >= t_stop) {
        phase = drain;
        recording_ = false;
        stopping_ = true;
        m_msgs1 = messages_;
        m_cpu1 = perf::process_cpu_ns();
        m_srv1 = proc_cpu_ns(server_pid_);
        m_t1 = now_;
        m_enter1 = kernel_entries_;
        drain_deadline = now_ + 5'000'000'000ULL;
      }
      if (phase == drain) {
        bool all = true;
        for (auto& c : conns_) all = all && c.done == c.issued && !c.send_busy;
        if (all) break;
        if (now_ > drain_deadline) fail("echo of in-flight messages did not arrive in 5 s", 0, 0);
      }
      // Nothing in flight can only mean a connection stalled for good.
    }

    const double window_s = double(m_t1 - m_t0) / 1e9;
    const double msgs = double(m_msgs1 - m_msgs0);
    const double gen_cpu = double(m_cpu1 - m_cpu0), srv_cpu = double(m_srv1 - m_srv0);
    const double gen_util = gen_cpu / double(m_t1 - m_t0);
    const double srv_util = srv_cpu / double(m_t1 - m_t0);
    // A side using >= 80 % of its core is taken as saturated (this leaves room
    // for the idle gaps of a virtual machine): the saturated side limited the
    // rate; both: either may have; neither: round-trip latency did.
    const bool srv_sat = srv_util >= 0.8, gen_sat = gen_util >= 0.8;
    const char* bound = srv_sat && gen_sat ? "both-saturated"
                        : srv_sat          ? "server-bound"
                        : gen_sat          ? "generator-bound"
                                           : "latency-bound";
    std::uint64_t verified = 0;
    for (auto& c : conns_) verified += c.received;
    perf::json_line j;
    j.add("conns", std::uint64_t(conns_.size()))
        .add("size", size_)
        .add("inflight", inflight_)
        .add("window_s", window_s)
        .add("messages", std::uint64_t(msgs))
        .add("msgs_per_sec", msgs / window_s)
        .add("mib_per_sec", msgs * double(size_) / window_s / 1048576.0)
        .add("p50_us", hist_.percentile(50) / 1e3)
        .add("p99_us", hist_.percentile(99) / 1e3)
        .add("p999_us", hist_.percentile(99.9) / 1e3)
        .add("max_us", double(hist_.max()) / 1e3)
        .add("gen_cpu_util", gen_util)
        .add("gen_cpu_us_per_msg", gen_cpu / 1e3 / msgs)
        .add("gen_kernel_entries_per_msg", double(m_enter1 - m_enter0) / msgs)
        .add("server_cpu_util", server_pid_ > 0 ? srv_util : NAN)
        .add("server_cpu_us_per_msg", server_pid_ > 0 ? srv_cpu / 1e3 / msgs : NAN)
        .add("bound", server_pid_ > 0 ? bound : "unknown")
        .add("total_messages", messages_)
        .add("verified_bytes", verified)
        .print();
    return 0;
  }

private:
  void issue(connection& c) {
    c.sent_at[c.issued % inflight_] = now_;
    ++c.issued;
    c.due += size_;
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {  // queue full: hand the batch to the kernel now
      io_uring_submit(&ring_);
      ++kernel_entries_;
      s = io_uring_get_sqe(&ring_);
      if (!s) die("submission queue full");
    }
    return s;
  }

  void arm_send(connection& c) {
    if (c.send_busy || c.sent == c.due) return;
    auto len = std::size_t(std::min<std::uint64_t>(c.due - c.sent, pattern_len));
    const unsigned char* p = pattern.data() + (c.seed + c.sent) % pattern_len;
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, p, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, std::uint64_t(c.index) << 1);
    c.send_busy = true;
  }

  void arm_recv(connection& c) {
    if (c.recv_busy || c.received == c.due) return;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.rbuf.get(), recv_buffer_size, 0);
    io_uring_sqe_set_data64(s, (std::uint64_t(c.index) << 1) | 1);
    c.recv_busy = true;
  }

  void complete(std::uint64_t user_data, int res) {
    connection& c = conns_[user_data >> 1];
    if (user_data & 1) {
      c.recv_busy = false;
      if (res == 0) fail("server closed the connection", c.index, c.received);
      if (res < 0) {
        errno = -res;
        std::perror("recv");
        fail("receive failed", c.index, c.received);
      }
      auto n = std::size_t(res);
      if (c.received + n > c.sent) fail("received more bytes than were sent", c.index, c.received);
      const unsigned char* expect = pattern.data() + (c.seed + c.received) % pattern_len;
      if (std::memcmp(c.rbuf.get(), expect, n) != 0)
        fail("echoed bytes differ from the bytes sent", c.index, c.received);
      c.received += n;
      while ((c.done + 1) * size_ <= c.received) {
        if (recording_) hist_.record(now_ - c.sent_at[c.done % inflight_]);
        ++c.done;
        ++messages_;
        if (!stopping_) issue(c);
      }
      arm_recv(c);
      arm_send(c);
    } else {
      c.send_busy = false;
      if (res <= 0) {
        errno = -res;
        std::perror("send");
        fail("send failed", c.index, c.sent);
      }
      c.sent += std::uint64_t(res);
      arm_send(c);
      arm_recv(c);
    }
  }

  std::string host_;
  unsigned port_;
  std::uint64_t size_, inflight_;
  double duration_, warmup_;
  long server_pid_;
  std::vector<connection> conns_;
  io_uring ring_{};
  histogram hist_;
  std::uint64_t now_ = 0, messages_ = 0, kernel_entries_ = 0;
  bool recording_ = false, stopping_ = false;
};

// --- churn mode ----------------------------------------------------------------------
// user_data: slot << 2 | step. A slot's steps run strictly one after another.
class churn {
public:
  explicit churn(const perf::options& o)
      : port_(unsigned(o.num("port", 0))),
        duration_(o.real("duration", 5)),
        warmup_(o.real("warmup", 1)),
        server_pid_(long(o.num("server-pid", 0))),
        slots_(std::size_t(o.num("churn", 1))) {
    if (inet_pton(AF_INET, o.str("host", "127.0.0.1").c_str(), &addr_.sin_addr) != 1)
      die("bad --host (IPv4 address)");
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(std::uint16_t(port_));
    unsigned entries = 64;
    while (entries < slots_.size() + 16) entries *= 2;
    if (int r = io_uring_queue_init(entries, &ring_, 0); r < 0) {
      errno = -r;
      die("io_uring_queue_init");
    }
  }
  ~churn() {
    for (auto& s : slots_)
      if (s.fd >= 0) close(s.fd);
    io_uring_queue_exit(&ring_);
  }

  int run() {
    const auto t_start = now_ns();
    const auto t_measure = t_start + std::uint64_t(warmup_ * 1e9);
    const auto t_stop = t_measure + std::uint64_t(duration_ * 1e9);
    now_ = t_start;
    for (std::size_t i = 0; i < slots_.size(); ++i) start(i);
    std::uint64_t c0 = 0, srv0 = 0, t0 = 0, c1 = 0, srv1 = 0, t1 = 0;
    enum { warmup, measure, drain } phase = warmup;
    std::uint64_t drain_deadline = 0;
    for (;;) {
      run_batch(ring_, [this](std::uint64_t data, int res) { complete(data, res); });
      now_ = now_ns();
      if (phase == warmup && now_ >= t_measure) {
        phase = measure;
        recording_ = true;
        c0 = done_, srv0 = proc_cpu_ns(server_pid_), t0 = now_;
      } else if (phase == measure && now_ >= t_stop) {
        phase = drain;
        recording_ = false;
        stopping_ = true;
        c1 = done_, srv1 = proc_cpu_ns(server_pid_), t1 = now_;
        drain_deadline = now_ + 5'000'000'000ULL;
      }
      if (phase == drain) {
        if (active_ == 0) break;
        if (now_ > drain_deadline) fail("churn: connections did not finish in 5 s", 0, 0);
      }
    }
    const double window_s = double(t1 - t0) / 1e9, conns = double(c1 - c0);
    const double srv_cpu = double(srv1 - srv0);
    perf::json_line()
        .add("churn", std::uint64_t(slots_.size()))
        .add("window_s", window_s)
        .add("connections", std::uint64_t(conns))
        .add("conns_per_sec", conns / window_s)
        .add("p50_us", hist_.percentile(50) / 1e3)
        .add("p99_us", hist_.percentile(99) / 1e3)
        .add("server_cpu_util", server_pid_ > 0 ? srv_cpu / double(t1 - t0) : NAN)
        .add("server_cpu_us_per_conn", server_pid_ > 0 ? srv_cpu / 1e3 / conns : NAN)
        .add("total_connections", done_)
        .print();
    return 0;
  }

private:
  enum step : std::uint64_t { step_connect = 0, step_send = 1, step_recv = 2 };
  struct slot {
    int fd = -1;
    std::uint64_t started = 0;  // connect submitted
    std::uint64_t serial = 0;   // which connection of the run (pattern offset)
    unsigned char in[16];
  };

  const unsigned char* message(const slot& s) const {
    return pattern.data() + (s.serial * 8191) % pattern_len;
  }

  io_uring_sqe* sqe(std::size_t i, step k) {
    io_uring_sqe* q = io_uring_get_sqe(&ring_);
    if (!q) {
      io_uring_submit(&ring_);
      q = io_uring_get_sqe(&ring_);
      if (!q) die("submission queue full");
    }
    io_uring_sqe_set_data64(q, std::uint64_t(i) << 2 | k);
    return q;
  }

  void start(std::size_t i) {
    slot& s = slots_[i];
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s.fd < 0) die("socket");
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    linger l{1, 0};  // close() sends an RST: no TIME_WAIT on this side
    setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    s.started = now_;
    s.serial = serial_++;
    io_uring_prep_connect(sqe(i, step_connect), s.fd, reinterpret_cast<sockaddr*>(&addr_),
                          sizeof addr_);
    ++active_;
  }

  void complete(std::uint64_t user_data, int res) {
    const std::size_t i = std::size_t(user_data >> 2);
    slot& s = slots_[i];
    switch (step(user_data & 3)) {
    case step_connect:
      if (res < 0) {
        errno = -res;
        std::perror("connect");
        fail("churn: connect failed", i, 0);
      }
      io_uring_prep_send(sqe(i, step_send), s.fd, message(s), 16, MSG_NOSIGNAL);
      break;
    case step_send:
      if (res != 16) fail("churn: send failed", i, 0);
      io_uring_prep_recv(sqe(i, step_recv), s.fd, s.in, 16, MSG_WAITALL);
      break;
    case step_recv:
      if (res != 16) fail("churn: the echo did not arrive", i, 0);
      if (std::memcmp(s.in, message(s), 16) != 0) fail("churn: echoed bytes differ", i, 0);
      if (recording_) hist_.record(now_ - s.started);
      ++done_;
      close(s.fd);
      s.fd = -1;
      --active_;
      if (!stopping_) start(i);
      break;
    }
  }

  unsigned port_;
  double duration_, warmup_;
  long server_pid_;
  sockaddr_in addr_{};
  std::vector<slot> slots_;
  io_uring ring_{};
  histogram hist_;
  std::uint64_t now_ = 0, done_ = 0, serial_ = 0;
  std::size_t active_ = 0;
  bool recording_ = false, stopping_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  if (!o.flag("port")) {
    std::fprintf(stderr, "usage: %s --port P [--conns C --size S --inflight K --duration SEC "
                         "--warmup SEC --server-pid PID | --idle N --hold-ms MS | --churn K --duration SEC "
                         "--warmup SEC --server-pid PID]\n", argv[0]);
    return 2;
  }
  make_pattern();
  if (o.flag("idle")) return idle_mode(o);
  if (o.flag("churn")) {
    churn c(o);
    return c.run();
  }
  load l(o);
  return l.run();
}
