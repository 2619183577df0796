// libs/detail/uring/ring.hpp: one io_uring instance, set up with the best
// flags the running kernel accepts. Private to the library (it includes
// liburing.h, which no public header does).
#ifndef ZOKIO_LIBS_DETAIL_URING_RING_HPP
#define ZOKIO_LIBS_DETAIL_URING_RING_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/driver_sizes.hpp>

#include <liburing.h>

#include <cstdint>

namespace zokio {
namespace detail {
namespace uring {

using ring_sizes = driver_sizes;

// RAII owner of an io_uring instance.
//
// Thread affinity: with IORING_SETUP_SINGLE_ISSUER (linux 6.0) only the
// thread that created the ring may submit to it or wait on it; every use
// therefore happens on that thread. The constructor tries the flag sets of
// setup_ladder (ring.cpp) from the newest kernel down to the oldest supported
// and remembers, process-wide, the first set that worked, so later rings do
// not repeat failed attempts.
class ring
{
public:
  // Creates the ring. Throws boost::system::system_error naming
  // "io_uring_queue_init_params" and explaining the likely cause when the
  // kernel refuses io_uring altogether.
  explicit ring(const ring_sizes& sizes = {});
  ~ring();

  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  ::io_uring* get() noexcept { return &ring_; }
  const ::io_uring* get() const noexcept { return &ring_; }

  // The IORING_SETUP_* flags the ring was created with.
  unsigned setup_flags() const noexcept { return ring_.flags; }

  // The IORING_FEAT_* flags the kernel reported.
  std::uint32_t features() const noexcept { return features_; }

  bool has_flag(unsigned flag) const noexcept { return (ring_.flags & flag) != 0; }

  // SQEs prepared and not yet submitted.
  unsigned sq_pending() const noexcept { return ::io_uring_sq_ready(&ring_); }

  // Completions posted and not yet consumed.
  unsigned cq_ready() const noexcept { return ::io_uring_cq_ready(&ring_); }

  // True when completions wait in the kernel and only an io_uring_enter with
  // GETEVENTS makes them visible: deferred task work (IORING_SQ_TASKRUN,
  // with IORING_SETUP_TASKRUN_FLAG) or an overflowed completion queue.
  bool needs_getevents() const noexcept
  {
    unsigned flags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED);
    return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
  }

private:
  ::io_uring ring_;
  std::uint32_t features_ = 0;
};

// The setup flags the first successful ring of this process used (0 before).
unsigned process_setup_flags() noexcept;

} // namespace uring
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_URING_RING_HPP
