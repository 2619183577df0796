// Do registered descriptors (IOSQE_FIXED_FILE) pay for small socket I/O here?
//
//   fixed_file_probe [--pairs P] [--batch B] [--loops N] [--rounds R]
//
// P connected AF_UNIX stream pairs. One loop iteration prepares, on every
// pair, B sends of 64 bytes on one end and B receives of 64 bytes on the
// other, and submits them all with one io_uring_submit_and_wait (the sends
// come first in the submission queue, so each receive finds its data and
// completes inline). N iterations are timed with plain descriptors, then N
// with the same sockets registered (io_uring_register_files and
// IOSQE_FIXED_FILE), alternately, R rounds each. Reported: the thread's CPU
// time per operation for each mode (median of the rounds) and their ratio,
// as one JSON line.
//
// What a registered descriptor saves is the file lookup and reference count
// of each request (fdget/fdput). This is the measurement behind zokio's
// decision not to register socket descriptors: the saving is a few percent
// of a small operation's io_uring cost, while every socket would have to be
// registered in (and removed from) the table of every worker ring that
// touches it.
#include <liburing.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "bench.hpp"

namespace {

using perf::die;

// Runs `loops` iterations; returns CPU ns per operation (send or receive).
// fds[2i] sends to fds[2i+1]. With fixed, the indexes in the registered table
// (the same positions) are used instead of the descriptors.
double run(io_uring& ring, const std::vector<int>& fds, unsigned batch, unsigned loops,
           bool fixed) {
  char out[64];
  std::memset(out, 'f', sizeof out);
  std::vector<char> in(64 * batch * (fds.size() / 2));
  const std::size_t pairs = fds.size() / 2;
  const std::uint64_t c0 = perf::thread_cpu_ns();
  for (unsigned l = 0; l < loops; ++l) {
    for (std::size_t p = 0; p < pairs; ++p)
      for (unsigned b = 0; b < batch; ++b) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        int fd = fixed ? int(2 * p) : fds[2 * p];
        io_uring_prep_send(sqe, fd, out, sizeof out, 0);
        if (fixed) sqe->flags |= IOSQE_FIXED_FILE;
      }
    for (std::size_t p = 0; p < pairs; ++p)
      for (unsigned b = 0; b < batch; ++b) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        int fd = fixed ? int(2 * p + 1) : fds[2 * p + 1];
        io_uring_prep_recv(sqe, fd, in.data() + 64 * (p * batch + b), 64, MSG_WAITALL);
        if (fixed) sqe->flags |= IOSQE_FIXED_FILE;
      }
    const unsigned ops = unsigned(2 * pairs * batch);
    if (io_uring_submit_and_wait(&ring, ops) < 0) die("io_uring_submit_and_wait");
    unsigned seen = 0;
    while (seen < ops) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring, &cqe) != 0) die("io_uring_wait_cqe");
      if (cqe->res != 64) {
        errno = cqe->res < 0 ? -cqe->res : EIO;
        die("send/recv");
      }
      io_uring_cqe_seen(&ring, cqe);
      ++seen;
    }
  }
  const std::uint64_t c1 = perf::thread_cpu_ns();
  return double(c1 - c0) / (double(loops) * 2.0 * double(pairs) * double(batch));
}

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  const auto pairs = unsigned(o.num("pairs", 3));
  const auto batch = unsigned(o.num("batch", 16));
  const auto loops = unsigned(o.num("loops", 50000));
  const auto rounds = unsigned(o.num("rounds", 3));

  std::vector<int> fds;
  for (unsigned p = 0; p < pairs; ++p) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
    fds.push_back(sv[0]);
    fds.push_back(sv[1]);
  }

  io_uring ring;
  const unsigned entries = 2 * pairs * batch;
  if (io_uring_queue_init(entries < 8 ? 8 : entries, &ring, 0) != 0)
    die("io_uring_queue_init");
  if (io_uring_register_files(&ring, fds.data(), unsigned(fds.size())) != 0) {
    std::puts("{\"fixed_files\": \"unsupported\"}");
    return 0;
  }

  std::vector<double> cpu[2];
  for (unsigned r = 0; r < rounds; ++r)
    for (int fixed = 0; fixed < 2; ++fixed)
      cpu[fixed].push_back(run(ring, fds, batch, loops, fixed == 1));
  io_uring_queue_exit(&ring);
  for (int fd : fds) ::close(fd);

  auto median = [](const std::vector<double>& v) { return perf::percentile(v, 50); };
  const double plain = median(cpu[0]), fixed = median(cpu[1]);
  perf::json_line j;
  j.add("pairs", std::uint64_t(pairs))
      .add("batch", std::uint64_t(batch))
      .add("plain_cpu_ns_per_op", plain)
      .add("fixed_cpu_ns_per_op", fixed)
      .add("plain_over_fixed", plain / fixed);
  j.print();
  return 0;
}
