// libs/detail/uring/net_features.cpp: probing io_uring networking features.
#include <zokio/detail/uring/net_features.hpp>

#include "detail/backend_select.hpp"

#include <liburing.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace uring {
namespace {

// Submits the prepared SQE and returns its CQE result (or -errno of the
// submission).
int run_one(::io_uring& ring)
{
  int r = ::io_uring_submit(&ring);
  if (r < 0)
    return r;
  ::io_uring_cqe* cqe = nullptr;
  r = ::io_uring_wait_cqe(&ring, &cqe);
  if (r < 0)
    return r;
  int res = cqe->res;
  ::io_uring_cqe_seen(&ring, cqe);
  return res;
}

// Multishot accept, tried for real: a listening socket on 127.0.0.1 (port
// 0), the request armed, one client connected. A kernel without
// IORING_ACCEPT_MULTISHOT rejects the request (EINVAL, from the accept's
// preparation, which refused any ioprio before 5.19); one with it posts the
// connection with the request still armed (IORING_CQE_F_MORE). The request
// is then cancelled and reaped to its last CQE before anything is closed,
// so it installs no descriptor after the probe, and every descriptor it
// posted is closed. Bounded: each wait has a timeout (about 1.5 s in all,
// microseconds when the kernel answers as it should).
bool probe_multishot_accept(::io_uring& ring)
{
  constexpr std::uint64_t accept_data = 3, cancel_data = 4;
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return false;
  ::sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::socklen_t len = sizeof(addr);
  // Blocking listener: with O_NONBLOCK io_uring would fail the accept with
  // EAGAIN instead of waiting for a connection.
  if (::bind(lfd, reinterpret_cast<::sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(lfd, 4) != 0
      || ::getsockname(lfd, reinterpret_cast<::sockaddr*>(&addr), &len) != 0)
  {
    ::close(lfd);
    return false;
  }

  ::io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
  ::io_uring_prep_multishot_accept(sqe, lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ::io_uring_sqe_set_data64(sqe, accept_data);
  if (::io_uring_submit(&ring) != 1)
  {
    ::close(lfd);
    return false;
  }

  // The handshake completes inside connect() on loopback, so the connection
  // is in the backlog (and the request's poll woken) when it returns.
  int cfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd >= 0 && ::connect(cfd, reinterpret_cast<::sockaddr*>(&addr), sizeof(addr)) != 0)
  {
    ::close(cfd);
    cfd = -1;
  }

  bool ok = false;
  bool armed = true;          // the request's last CQE (no F_MORE) not seen yet
  bool cancel_pending = false;
  for (int i = 0; i < 8 && (armed || cancel_pending); ++i)
  {
    if (armed && !cancel_pending && (i > 0 || cfd < 0))
    {
      // Seen what we came for, or waited long enough, or no client could
      // connect: cancel the request.
      sqe = ::io_uring_get_sqe(&ring);
      if (sqe == nullptr)
        break;
      ::io_uring_prep_cancel64(sqe, accept_data, 0);
      ::io_uring_sqe_set_data64(sqe, cancel_data);
      if (::io_uring_submit(&ring) != 1)
        break;
      cancel_pending = true;
    }
    // The first CQE: the connection, or EINVAL at once; up to 1 s, so that
    // a loaded machine does not turn the feature off. Later ones (the
    // cancel and the request's end): 100 ms each.
    __kernel_timespec ts{i == 0 ? 1 : 0, i == 0 ? 0 : 100'000'000};
    ::io_uring_cqe* cqe = nullptr;
    if (::io_uring_wait_cqe_timeout(&ring, &cqe, &ts) != 0)
    {
      if (i == 0)
        continue;  // nothing yet: cancel, and reap what that brings
      break;
    }
    if (cqe->user_data == accept_data)
    {
      const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      if (cqe->res >= 0)
      {
        ::close(cqe->res);
        ok = ok || more;
      }
      else if (cqe->res == -ECANCELED && cfd < 0)
      {
        // No client (no loopback?): the request was taken and stayed armed
        // until cancelled, which a kernel without the flag never does.
        ok = true;
      }
      armed = more;
    }
    else if (cqe->user_data == cancel_data)
    {
      cancel_pending = false;
    }
    ::io_uring_cqe_seen(&ring, cqe);
  }

  if (armed)
  {
    // The waits ran out (not expected): shutting the listener down empties
    // its queue and ends the request (EINVAL), so that nothing can install
    // a descriptor behind our back; then one last bounded reap.
    ::shutdown(lfd, SHUT_RDWR);
    __kernel_timespec ts{0, 100'000'000};
    ::io_uring_cqe* cqe = nullptr;
    for (int i = 0; i < 4 && armed && ::io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0; ++i)
    {
      if (cqe->user_data == accept_data)
      {
        if (cqe->res >= 0)
          ::close(cqe->res);
        armed = (cqe->flags & IORING_CQE_F_MORE) != 0;
      }
      ::io_uring_cqe_seen(&ring, cqe);
    }
    ok = false;  // not to be trusted
  }
  if (cfd >= 0)
    ::close(cfd);
  ::close(lfd);
  return ok;
}

net_features probe()
{
  net_features f;
  const char* env = std::getenv("ZOKIO_NET_FEATURES");
  // Not on io_uring: none of these exist, and nothing probes a ring.
  try
  {
    if (process_backend() != backend::io_uring)
      return f;
  }
  catch (...)
  {
    return f;  // a forced backend that cannot work: the context says why
  }
  if (env && std::strcmp(env, "none") == 0)
    return f;

  ::io_uring ring;
  if (::io_uring_queue_init(8, &ring, 0) != 0)
    return f;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
  {
    ::io_uring_queue_exit(&ring);
    return f;
  }

  if (::io_uring_probe* p = ::io_uring_get_probe_ring(&ring))
  {
    f.send_zc = ::io_uring_opcode_supported(p, IORING_OP_SEND_ZC);
    f.waitid = ::io_uring_opcode_supported(p, op_waitid);
    f.openat = ::io_uring_opcode_supported(p, IORING_OP_OPENAT);
    f.statx = ::io_uring_opcode_supported(p, IORING_OP_STATX);
    f.ftruncate = ::io_uring_opcode_supported(p, op_ftruncate);
    ::io_uring_free_probe(p);
  }

  // A receive with POLL_FIRST of a byte that is there: 1, or -EINVAL where
  // the flag is unknown.
  char c = 'p';
  if (::write(sv[1], &c, 1) == 1)
  {
    ::io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_recv(sqe, sv[0], &c, 1, 0);
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    f.recv_poll_first = run_one(ring) == 1;
  }

  // Multishot receive: a byte that is there comes back with the request
  // still armed (IORING_CQE_F_MORE); cancel it afterwards. Needs a buffer
  // ring, so it is tried with the buffer-ring probe.
  ::io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  void* mem = nullptr;
  const unsigned entries = 1;
  if (::posix_memalign(&mem, 4096, 4096) == 0)
  {
    std::memset(mem, 0, 4096);
    reg.ring_addr = reinterpret_cast<unsigned long>(mem);
    reg.ring_entries = entries;
    reg.bgid = 0;
    if (::io_uring_register_buf_ring(&ring, &reg, 0) == 0)
    {
      f.buffer_ring = true;
      auto* br = static_cast<::io_uring_buf_ring*>(mem);
      ::io_uring_buf_ring_init(br);
      static char buf[16];
      ::io_uring_buf_ring_add(br, buf, sizeof(buf), 0, ::io_uring_buf_ring_mask(entries), 0);
      ::io_uring_buf_ring_advance(br, 1);
      if (::write(sv[1], &c, 1) == 1)
      {
        ::io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
        ::io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        ::io_uring_sqe_set_data64(sqe, 1);
        if (::io_uring_submit(&ring) == 1)
        {
          // The byte is already there: a kernel with the feature completes
          // at once, one without it rejects the request at once. Bounded
          // anyway (1 s), like every other wait of the probe.
          ::io_uring_cqe* cqe = nullptr;
          __kernel_timespec limit{1, 0};
          if (::io_uring_wait_cqe_timeout(&ring, &cqe, &limit) == 0)
          {
            f.multishot_recv = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE);
            ::io_uring_cqe_seen(&ring, cqe);
          }
          // Cancel whatever is still armed, by descriptor: also probes
          // IORING_ASYNC_CANCEL_FD | ALL.
          sqe = ::io_uring_get_sqe(&ring);
          ::io_uring_prep_cancel_fd(sqe, sv[0], IORING_ASYNC_CANCEL_ALL);
          ::io_uring_sqe_set_data64(sqe, 2);
          ::io_uring_submit(&ring);
          for (int i = 0; i < 2; ++i)
          {
            __kernel_timespec ts{0, 100'000'000};
            if (::io_uring_wait_cqe_timeout(&ring, &cqe, &ts) != 0)
              break;
            if (cqe->user_data == 2)
              f.cancel_fd_all = cqe->res >= 0;
            ::io_uring_cqe_seen(&ring, cqe);
          }
        }
      }
      ::io_uring_unregister_buf_ring(&ring, 0);
    }
  }

  // CANCEL_ANY: where the flag is known, the count of requests it
  // cancelled (a probe above may have left one), or -ENOENT for none; where
  // it is not, -EINVAL.
  // (CQEs of the probes above that are still unread are skipped.)
  if (::io_uring_sqe* sqe = ::io_uring_get_sqe(&ring))
  {
    constexpr std::uint64_t cancel_any_data = 9;
    ::io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    ::io_uring_sqe_set_data64(sqe, cancel_any_data);
    int res = -EINVAL;
    if (::io_uring_submit(&ring) == 1)
      for (int i = 0; i < 4; ++i)
      {
        ::io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{0, 100'000'000};
        if (::io_uring_wait_cqe_timeout(&ring, &cqe, &ts) != 0)
          break;
        const bool ours = cqe->user_data == cancel_any_data;
        if (ours)
          res = cqe->res;
        ::io_uring_cqe_seen(&ring, cqe);
        if (ours)
          break;
      }
    const char* v = std::getenv("ZOKIO_URING_CANCEL_ANY");
    f.cancel_any = (res >= 0 || res == -ENOENT) && !(v && std::strcmp(v, "0") == 0);
  }

  // Multishot accept: tried on a listening socket, not inferred from the
  // features of the same release (the acceptor also falls back when the
  // kernel refuses the request anyway: accept_engine.hpp).
  f.multishot_accept = probe_multishot_accept(ring);

  ::close(sv[0]);
  ::close(sv[1]);
  ::io_uring_queue_exit(&ring);
  std::free(mem);
  return f;
}

} // namespace

const net_features& features() noexcept
{
  static const net_features f = probe();
  return f;
}

} // namespace uring
} // namespace detail
} // namespace zokio
