// zokio/detail/io_operation.hpp: an operation carried out by the kernel,
// described in terms that every backend understands.
//
// An I/O operation says *what* to do in an io_request (receive into these
// buffers, accept on this descriptor, wait for readability...), and the
// driver of the thread that starts it decides *how*: the io_uring driver
// turns the request into one SQE and reads the result from its CQE; the
// readiness drivers (epoll, kqueue) make the system call the request names
// and, when it would block, wait for the descriptor to become ready and make
// it again. Operations therefore carry no backend code and public headers
// need no kernel-interface header. (Asio's reactor operations carry a perform
// function for the same reason; here the perform step is the driver's, one
// switch on the request's kind, since the requests are few and fixed.)
//
// Lifetime: from its start until its completion has been reaped, the kernel
// (io_uring) or the driver (readiness) may write into the operation or into
// the buffers it names, so nothing frees it before then: cancelling only
// asks for an early completion (with -ECANCELED). The driver of the runner
// that started it is the only one that touches it meanwhile, on that
// runner's thread.
#ifndef ZOKIO_DETAIL_IO_OPERATION_HPP
#define ZOKIO_DETAIL_IO_OPERATION_HPP

#include <zokio/detail/operation.hpp>

#include <cstddef>
#include <cstdint>

// The io_uring driver's submission entry, named (never defined) here for the
// few operations that only exist on io_uring (multishot requests): they
// prepare their own SQE, in library sources.
struct io_uring_sqe;

namespace zokio {
namespace detail {

class runner;

// What an operation asks of the kernel. Filled by the operation before it is
// started; read by the driver, on the starting runner's thread.
struct io_request
{
  enum kind_type : std::uint8_t
  {
    nop,         // completes at once with 0
    recv,        // recv(fd, data, size, flags)
    recvmsg,     // recvmsg(fd, (msghdr*) data, flags)
    send,        // send(fd, data, size, flags)
    sendmsg,     // sendmsg(fd, (msghdr*) data, flags)
    accept,      // accept4(fd, (sockaddr*) data, (socklen_t*) extra), close-on-exec
    connect,     // connect(fd, (sockaddr*) data, size)
    poll,        // readiness of fd for flags (POLLIN, POLLOUT, POLLPRI...)
    recv_pooled, // recv into a buffer of the provided_buffer_pool at data
    read,        // read(fd, data, size), or pread at offset when offset >= 0
    readv,       // readv(fd, (iovec*) data, size buffers), preadv at offset >= 0
    write,       // write(fd, data, size), or pwrite at offset when offset >= 0
    writev,      // writev(fd, (const iovec*) data, size buffers), pwritev at offset >= 0
    fsync,       // fsync(fd), fdatasync(fd) when flags is fsync_data
    openat,      // openat(AT_FDCWD, (const char*) data, flags | O_CLOEXEC, size as mode)
    statx,       // the size of fd into data (statx(fd, "", AT_EMPTY_PATH, STATX_SIZE)
                 // into a struct statx; fstat into a struct stat where there is no statx)
    ftruncate,   // ftruncate(fd, offset)
    cancel,      // cancel the operation at data (an io_operation* of this runner)
    custom,      // io_uring only: the operation prepares its own SQE (prepare_)
  };

  kind_type kind = nop;

  // Hints: poll_first: the last receive emptied the socket, so the kernel
  // may wait for data before trying (io_uring's IORING_RECVSEND_POLL_FIRST;
  // the readiness drivers track readiness themselves). stream: a receive on
  // a stream socket, where a transfer shorter than the buffer means that
  // the socket is empty (not so for datagrams).
  // blocking: the descriptor is a regular file (or anything else that is
  // never "ready"): a readiness driver makes the call on the blocking pool
  // (libs/detail/blocking_pool.hpp) instead of its own thread; io_uring
  // needs no hint. poll_then_retry: io_uring driver only, the transfer was
  // refused with EAGAIN (an O_NONBLOCK descriptor on a kernel that does not
  // wait for it), so the driver waits for readiness and then retries.
  // no_sigpipe: a write to a pipe or other non-socket descriptor, which
  // raises SIGPIPE when the reader has gone (sockets use MSG_NOSIGNAL).
  static constexpr std::uint8_t poll_first = 1;
  static constexpr std::uint8_t stream = 2;
  static constexpr std::uint8_t blocking = 4;
  static constexpr std::uint8_t poll_then_retry = 8;
  static constexpr std::uint8_t no_sigpipe = 16;
  std::uint8_t hints = 0;

  // io_request::fsync: flags value for fdatasync.
  static constexpr int fsync_data = 1;

  // The readiness drivers' per-descriptor registrations tell descriptors
  // apart by this generation as well as by number, since a number is reused
  // once closed (socket_state::generation_). 0 for descriptors that stay
  // open as long as their operations (the Asio bridge's epoll descriptor).
  std::uint32_t generation = 0;

  int fd = -1;
  int flags = 0;
  void* data = nullptr;
  std::size_t size = 0;
  void* extra = nullptr;

  // read, readv, write, writev: the file offset, or -1 for the descriptor's
  // current position (streams, pipes). ftruncate: the new length.
  std::int64_t offset = -1;
};

class io_operation : public operation
{
public:
  // io_uring only (io_request::custom): fills the SQE.
  using prepare_func = void (*)(io_operation* op, ::io_uring_sqe* sqe);

  // Neutral bits of result_flags_, translated by each driver.
  static constexpr unsigned flag_socket_nonempty = 1u << 0; // more data was waiting
  static constexpr std::uint32_t no_buffer_id = 0xffffffffu;

  // What to do (see io_request).
  io_request req_;

  // The result: bytes transferred, a descriptor, or -errno.
  int result_ = 0;

  // flag_* bits describing the result.
  unsigned result_flags_ = 0;

  // recv_pooled: the pool buffer the driver received into (or that the
  // kernel chose), else no_buffer_id.
  std::uint32_t buffer_id_ = no_buffer_id;

  // Set on the starting runner's thread before the driver acts on the
  // request: it was cancelled before the kernel saw it; the driver then
  // completes it as cancelled without making the request (nop_ tells so).
  bool cancelled_ = false;
  bool nop_ = false;

  // recv_pooled: no buffer of the pool was free (the result is -ENOBUFS).
  bool no_buffer_ = false;

  // io_uring driver, io_request::poll_then_retry: the transfer was refused
  // with EAGAIN and the ring now holds a readiness poll for the operation
  // (same user_data); when it completes the transfer is submitted again.
  // Owner thread only.
  bool polling_ = false;

  // An internal step (runner::start_internal): its completion goes to the
  // runner's internal list, not to the ready queue. Readiness drivers only.
  bool internal_ = false;

  // A socket operation (socket_op sets it): when the thread whose ring holds
  // it exits, a request the kernel gave back cancelled, unmade, can be made
  // again on another thread's driver (socket_op::migrate).
  bool migratable_ = false;

  // io_uring driver: the request is in the ring (SQE prepared, its last CQE
  // not reaped). Owner thread only. A child after fork() reads it to tell
  // what the parent's rings held (lost to the child) from what had come
  // back (uring::driver::forked).
  bool in_kernel_ = false;

  // The runner whose driver holds the operation (set by runner::start).
  runner* runner_ = nullptr;

  // io_request::custom only.
  prepare_func prepare_ = nullptr;

protected:
  explicit io_operation(func_type complete) noexcept : operation(complete) {}

  io_operation(func_type complete, prepare_func prepare) noexcept
    : operation(complete), prepare_(prepare)
  {
    req_.kind = io_request::custom;
  }
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_IO_OPERATION_HPP
