// libs/detail/uring/net_features.cpp: probing io_uring networking features.
#include <zokio/detail/uring/net_features.hpp>

#include <liburing.h>

#include <cstdlib>
#include <cstring>

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

net_features probe()
{
  net_features f;
  const char* env = std::getenv("ZOKIO_NET_FEATURES");
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
          ::io_uring_cqe* cqe = nullptr;
          if (::io_uring_wait_cqe(&ring, &cqe) == 0)
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

  // Multishot accept and ASYNC_CANCEL_FD|ALL arrived in the same release as
  // buffer rings and POLL_FIRST (5.19); a listening socket is not needed to
  // tell: the accept flag is rejected (EINVAL) at preparation on older
  // kernels, which the acceptor also handles by falling back.
  f.multishot_accept = f.recv_poll_first && f.buffer_ring;

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
