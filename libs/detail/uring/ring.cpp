// libs/detail/uring/ring.cpp: io_uring setup with run-time fallback.
#include "detail/uring/ring.hpp"
#include <zokio/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace zokio {
namespace detail {
namespace uring {
namespace {

// Flag sets, best first. Each line names the kernel that introduced its
// newest flag. SUBMIT_ALL (5.18) keeps submitting after an SQE fails to
// prepare, so one bad request cannot hold back the rest of a batch.
// DEFER_TASKRUN (6.1) runs completion work only when this thread enters the
// kernel to harvest, which is when the loop wants it; TASKRUN_FLAG (5.19)
// then tells the loop through the SQ flags that such work is pending, so it
// enters the kernel only when there is something to harvest.
constexpr unsigned setup_ladder[] = {
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
    | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,          // 6.1
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN
    | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,          // 6.0
  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG
    | IORING_SETUP_SUBMIT_ALL,                                      // 5.19
  IORING_SETUP_SUBMIT_ALL,                                          // 5.18
  0,                                                                // 5.10
};
constexpr int ladder_size = sizeof(setup_ladder) / sizeof(setup_ladder[0]);

// Index into setup_ladder of the first set known to work, or -1 (unknown).
std::atomic<int> known_good_step{-1};

// Optional cap on the ladder, for tests and for users who want plain rings:
// ZOKIO_URING_SETUP=basic skips every optional flag.
int first_step_allowed()
{
  const char* v = std::getenv("ZOKIO_URING_SETUP");
  if (v && std::strcmp(v, "basic") == 0)
    return ladder_size - 1;
  return 0;
}

std::string explain(int err)
{
  std::string what = std::strerror(err);
  switch (err)
  {
  case ENOSYS:
    return what + " (the kernel has no io_uring support)";
  case EPERM:
  case EACCES:
    return what + " (io_uring is disabled by the kernel.io_uring_disabled sysctl"
                  " or refused by a seccomp profile)";
  case ENOMEM:
    return what + " (not enough locked memory for the rings: raise RLIMIT_MEMLOCK,"
                  " see ulimit -l, or use a kernel >= 5.12 which does not count it)";
  default:
    return what;
  }
}

// Upper bound on io-wq workers per ring: [bounded, unbounded]. Requests that
// cannot complete without blocking (regular-file I/O on some filesystems,
// some opens) run on these kernel threads; without a cap a burst of such
// requests may start hundreds of them. Arbitrary: enough to overlap blocking
// work on a few cores without multiplying threads.
unsigned iowq_limits()
{
  unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0)
    cores = 1;
  return cores < 4 ? 4 : cores;
}

} // namespace

unsigned process_setup_flags() noexcept
{
  int step = known_good_step.load(std::memory_order_relaxed);
  return step < 0 ? 0 : setup_ladder[step];
}

ring::ring(const ring_sizes& sizes)
{
  unsigned sq = sizes.sq_entries ? sizes.sq_entries : 256;
  unsigned cq = sizes.cq_entries ? sizes.cq_entries : sq * 16;
  if (cq < sq)
    cq = sq;

  int step = known_good_step.load(std::memory_order_relaxed);
  if (step < 0 || step < first_step_allowed())
    step = first_step_allowed();

  int err = 0;
  for (; step < ladder_size; ++step)
  {
    ::io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    params.flags = setup_ladder[step] | IORING_SETUP_CQSIZE;
    params.cq_entries = cq;
    err = -::io_uring_queue_init_params(sq, &ring_, &params);
    if (err == 0)
    {
      features_ = params.features;
      break;
    }
    // EINVAL: a flag this kernel does not know; try the next set. Anything
    // else (ENOSYS, EPERM, ENOMEM, EMFILE) does not depend on the flags.
    if (err != EINVAL)
      break;
  }

  if (err != 0)
  {
    boost::system::error_code ec(err, boost::asio::error::get_system_category());
    throw boost::system::system_error(ec,
        "io_uring_queue_init_params: io_uring is unavailable: " + explain(err));
  }

  int expected = -1;
  known_good_step.compare_exchange_strong(expected, step, std::memory_order_relaxed);

  // Registering the ring fd (linux 5.18) lets each io_uring_enter skip the
  // file-table lookup. Optional: failure changes nothing but speed.
  (void)::io_uring_register_ring_fd(&ring_);

  // Optional too (linux 5.15).
  unsigned limits[2] = { iowq_limits(), iowq_limits() };
  (void)::io_uring_register_iowq_max_workers(&ring_, limits);
}

ring::~ring()
{
  ::io_uring_queue_exit(&ring_);
}

} // namespace uring
} // namespace detail
} // namespace zokio
