// timer_storm with one kernel timeout per timer: the alternative to zokio's
// user-space timer structure (an expiry index under one kernel timeout per
// ring), measured with the same workload as perf/runtimes/asio/bench.cpp.
//
//   timer_storm --timers N --delay-ms D --window-ms W
//
// Arms N IORING_OP_TIMEOUT requests with absolute CLOCK_MONOTONIC expiries
// spread (in the same shuffled order) over [start + D, start + D + W], one SQE
// each, submitted in batches as the submission queue fills; then reaps until
// every one has completed with -ETIME. One thread, one ring
// (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them; the completion
// queue is sized so that nothing overflows).
//
// Prints one JSON object like bench.cpp's timer_storm: arm_ns_per_timer,
// cpu_ns_per_timer, total_ms, last_fired_late_ms.
#include <liburing.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "bench.hpp"

namespace {

void check(int r, const char* what) {
  if (r < 0) {
    std::fprintf(stderr, "timer_storm: %s: %s\n", what, std::strerror(-r));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  const std::uint64_t n = o.num("timers", 1'000'000);
  const std::uint64_t delay_ns = o.num("delay-ms", 300) * 1'000'000;
  const std::uint64_t window_ns = o.num("window-ms", 100) * 1'000'000;

  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  p.cq_entries = 65536;
  if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 65536;
    check(io_uring_queue_init_params(4096, &ring, &p), "io_uring_queue_init_params");
  }

  // The timespecs must stay valid until their SQEs are submitted; one each.
  std::vector<__kernel_timespec> expiry(n);
  std::uint64_t fired = 0, t_last = 0;
  auto reap = [&] {
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      if (cqe->res != -ETIME) {
        std::fprintf(stderr, "timer_storm: timeout completed with %d\n", cqe->res);
        std::exit(1);
      }
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
    fired += seen;
    if (fired == n && t_last == 0) t_last = perf::now_ns();
  };

  const auto c0 = perf::process_cpu_ns();
  const auto t0 = perf::now_ns();
  const std::uint64_t base = t0 + delay_ns;  // now_ns() is CLOCK_MONOTONIC
  for (std::uint64_t i = 0; i < n; ++i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    while (sqe == nullptr) {
      check(io_uring_submit(&ring), "io_uring_submit");
      reap();
      sqe = io_uring_get_sqe(&ring);
    }
    const std::uint64_t slot = (i * 7919) % n;
    const std::uint64_t at = base + slot * window_ns / n;
    expiry[i].tv_sec = static_cast<long long>(at / 1'000'000'000);
    expiry[i].tv_nsec = static_cast<long long>(at % 1'000'000'000);
    io_uring_prep_timeout(sqe, &expiry[i], 0, IORING_TIMEOUT_ABS);
  }
  check(io_uring_submit(&ring), "io_uring_submit");
  const auto t_armed = perf::now_ns();
  while (fired < n) {
    io_uring_cqe* cqe;
    int r = io_uring_wait_cqe(&ring, &cqe);
    if (r == -EINTR) continue;
    check(r, "io_uring_wait_cqe");
    reap();
  }
  const auto c1 = perf::process_cpu_ns();
  const double last_expiry_ns = double(base + window_ns);
  perf::json_line()
      .add("runtime", "liburing_raw")
      .add("scenario", "timer_storm")
      .add("threads", std::uint64_t(1))
      .add("timers", n)
      .add("arm_ms", double(t_armed - t0) / 1e6)
      .add("arm_ns_per_timer", double(t_armed - t0) / double(n))
      .add("total_ms", double(t_last - t0) / 1e6)
      .add("last_fired_late_ms", (double(t_last) - last_expiry_ns) / 1e6)
      .add("cpu_ns_per_timer", double(c1 - c0) / double(n))
      .print();
  io_uring_queue_exit(&ring);
}
