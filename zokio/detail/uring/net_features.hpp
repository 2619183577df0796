// zokio/detail/uring/net_features.hpp: the io_uring features of the running
// kernel that zokio uses when present (networking, child waits, file
// requests), probed once per process.
#ifndef ZOKIO_DETAIL_URING_NET_FEATURES_HPP
#define ZOKIO_DETAIL_URING_NET_FEATURES_HPP

#include <zokio/detail/config.hpp>

namespace zokio {
namespace detail {
namespace uring {

// Each flag is found by trying the feature on a small private ring (with a
// socket pair; multishot accept with a listening socket and one connection
// on 127.0.0.1), not by kernel version, so backports count and a seccomp
// profile that refuses something is respected. ZOKIO_NET_FEATURES=none
// turns every one off (tests of the fallbacks; comparisons).
struct net_features
{
  // IORING_RECVSEND_POLL_FIRST (linux 5.19): a receive arms poll at once
  // instead of first trying a transfer that would fail.
  bool recv_poll_first = false;

  // IORING_ACCEPT_MULTISHOT (linux 5.19): a connection came back with the
  // request still armed. (The acceptor still falls back to single accepts
  // if the kernel refuses the request later: accept_engine.hpp.)
  bool multishot_accept = false;

  // IORING_REGISTER_PBUF_RING (linux 5.19): provided buffer rings.
  bool buffer_ring = false;

  // IORING_RECV_MULTISHOT (linux 6.0).
  bool multishot_recv = false;

  // IORING_OP_SEND_ZC (linux 6.0).
  bool send_zc = false;

  // IORING_ASYNC_CANCEL_FD | ALL (linux 5.19).
  bool cancel_fd_all = false;

  // IORING_ASYNC_CANCEL_ANY (linux 5.19): one request cancels everything
  // in a ring (a thread leaving the context, shutdown). Without it each
  // request is cancelled by its user_data (uring::driver::cancel_all).
  // ZOKIO_URING_CANCEL_ANY=0 turns it off (the older kernels' path, tested
  // on this one).
  bool cancel_any = false;

  // IORING_OP_WAITID (linux 6.7): a child's exit waited for (and reaped)
  // by the ring. From the kernel's opcode probe only.
  bool waitid = false;

  // File requests (from the opcode probe): IORING_OP_OPENAT and
  // IORING_OP_STATX (linux 5.6), IORING_OP_FTRUNCATE (linux 6.9). Without
  // one, the asynchronous form makes the call on the initiating thread
  // (basic_file.hpp says so).
  bool openat = false;
  bool statx = false;
  bool ftruncate = false;
};

// Opcodes that liburing 2.3's header predates.
constexpr unsigned char op_waitid = 50;
constexpr unsigned char op_ftruncate = 55;

// The features of this kernel (probed on first call; thread-safe).
const net_features& features() noexcept;

} // namespace uring
} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_URING_NET_FEATURES_HPP
