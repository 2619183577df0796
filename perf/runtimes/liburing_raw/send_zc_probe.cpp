// Does zero-copy send (IORING_OP_SEND_ZC, linux 6.0) pay on this machine?
//
//   send_zc_probe [--size BYTES] [--mib TOTAL] [--rounds R]
//
// One connected loopback TCP pair. This thread sends TOTAL MiB in writes of
// BYTES, one request in flight, alternately with IORING_OP_SEND and
// IORING_OP_SEND_ZC (R rounds each); a second thread drains the other end
// with recv(). Reported per mode: throughput and the sending thread's CPU
// time per MiB (median of the rounds), as one JSON line.
//
// This is how zokio's socket layer decided against SEND_ZC for large writes:
// over loopback, the only network the harness has, the kernel copies
// zero-copy data on the receiving side anyway, and the extra notification
// completion and page pinning make the sender slower at every size. A
// kernel without SEND_ZC prints {"send_zc": "unsupported"} and exits 0.
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bench.hpp"

namespace {

using perf::die;

struct result {
  double bytes_per_sec;
  double cpu_ns_per_mib;
};

// Sends `total` bytes on fd in writes of `size`; every completion is reaped
// before the next write (a send's buffer may be reused only after its
// notification, for SEND_ZC).
result send_all(io_uring& ring, int fd, const char* buf, std::size_t size, std::size_t total,
                bool zero_copy) {
  const std::uint64_t t0 = perf::now_ns(), c0 = perf::thread_cpu_ns();
  std::size_t sent = 0;
  while (sent < total) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (zero_copy)
      io_uring_prep_send_zc(sqe, fd, buf, size, 0, 0);
    else
      io_uring_prep_send(sqe, fd, buf, size, 0);
    io_uring_submit(&ring);
    // SEND: one CQE. SEND_ZC: the result (with F_MORE), then the
    // notification (F_NOTIF) once the kernel no longer references buf.
    for (bool more = true; more;) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring, &cqe) != 0) die("io_uring_wait_cqe");
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        more = false;
      } else {
        if (cqe->res < 0) {
          errno = -cqe->res;
          die("send");
        }
        sent += std::size_t(cqe->res);
        more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      }
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  const std::uint64_t t1 = perf::now_ns(), c1 = perf::thread_cpu_ns();
  return {double(total) * 1e9 / double(t1 - t0), double(c1 - c0) / (double(total) / (1 << 20))};
}

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  const auto size = std::size_t(o.num("size", 65536));
  const auto total = std::size_t(o.num("mib", 1024)) << 20;
  const auto rounds = unsigned(o.num("rounds", 3));

  io_uring_probe* probe = io_uring_get_probe();
  const bool have_zc = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  if (probe) io_uring_free_probe(probe);
  if (!have_zc) {
    std::puts("{\"send_zc\": \"unsupported\"}");
    return 0;
  }

  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    die("listen");
  int sender = ::socket(AF_INET, SOCK_STREAM, 0);
  if (sender < 0 || ::connect(sender, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    die("connect");
  int receiver = ::accept(listener, nullptr, nullptr);
  if (receiver < 0) die("accept");

  // The drain reads until the sender closes: 2 * rounds * total bytes.
  std::thread drain([receiver] {
    std::vector<char> sink(1 << 20);
    while (::recv(receiver, sink.data(), sink.size(), 0) > 0) {
    }
  });

  io_uring ring;
  if (io_uring_queue_init(64, &ring, 0) != 0) die("io_uring_queue_init");
  std::unique_ptr<char[]> buf(new char[size]);
  std::memset(buf.get(), 'z', size);

  std::vector<double> rate[2], cpu[2];
  for (unsigned r = 0; r < rounds; ++r)
    for (int zc = 0; zc < 2; ++zc) {
      result x = send_all(ring, sender, buf.get(), size, total, zc == 1);
      rate[zc].push_back(x.bytes_per_sec);
      cpu[zc].push_back(x.cpu_ns_per_mib);
    }
  ::shutdown(sender, SHUT_WR);
  drain.join();
  io_uring_queue_exit(&ring);

  auto median = [](const std::vector<double>& v) { return perf::percentile(v, 50); };
  perf::json_line j;
  j.add("size", std::uint64_t(size))
      .add("send_gb_per_sec", median(rate[0]) / 1e9)
      .add("send_zc_gb_per_sec", median(rate[1]) / 1e9)
      .add("send_cpu_us_per_mib", median(cpu[0]) / 1e3)
      .add("send_zc_cpu_us_per_mib", median(cpu[1]) / 1e3);
  j.print();
  ::close(sender);
  ::close(receiver);
  ::close(listener);
  return 0;
}
