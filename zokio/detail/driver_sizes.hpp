// zokio/detail/driver_sizes.hpp: the sizes of a thread's driver, whatever the
// backend.
#ifndef ZOKIO_DETAIL_DRIVER_SIZES_HPP
#define ZOKIO_DETAIL_DRIVER_SIZES_HPP

namespace zokio {
namespace detail {

// Zero means "the default".
struct driver_sizes
{
  // Requests one loop pass hands to the kernel at most before it flushes
  // (io_uring: submission queue entries, default 256; one loop iteration
  // rarely queues more, and when it does the queue is flushed early).
  // Readiness backends: events taken per wait (default 256).
  unsigned sq_entries = 0;

  // io_uring: completion queue entries, default 16 x sq_entries (4096):
  // completions are reaped every iteration, and a burst larger than the
  // queue is kept by the kernel (IORING_FEAT_NODROP) and flushed on the next
  // enter. Unused by the readiness backends (completions wait in a list).
  unsigned cq_entries = 0;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_DRIVER_SIZES_HPP
