// zokio/detail/socket/ops/transfer_op.hpp: read and write on a descriptor
// or a file, at its current position or at an offset.
//
// One buffer is a read or write request, several are readv or writev:
// IORING_OP_READ / WRITE (linux 5.6) and READV / WRITEV (5.1) on io_uring,
// the system calls on the readiness backends (on the blocking pool for a
// regular file, io_request::blocking). The descriptor's hints
// (socket_state::io_hints_) say which: a pipe or terminal waits for
// readiness, a file does not.
//
// A read that returns zero bytes into a non-empty buffer is the end of the
// stream or of the file (boost::asio::error::eof), as Asio's descriptors
// and files report it. A transfer moves at most max_transfer bytes (Linux's
// own limit per call); read_some and write_some allow it, and the composed
// operations continue with the rest.
#ifndef ZOKIO_DETAIL_SOCKET_OPS_TRANSFER_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_TRANSFER_OP_HPP

#include <zokio/detail/socket/socket_buffers.hpp>
#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include <cstdint>
#include <type_traits>

namespace zokio {
namespace detail {

// Bytes one read or write may move (MAX_RW_COUNT: the kernel never moves
// more in one call, and the count fits the int of a completion).
constexpr std::size_t max_transfer = 0x7ffff000;

// Buffer: boost::asio::mutable_buffer (a read) or const_buffer (a write).
template <typename Buffer, typename BufferSequence>
class transfer_op_base : public socket_op
{
  static constexpr bool is_read = std::is_same_v<Buffer, boost::asio::mutable_buffer>;

public:
  std::size_t total_size() const noexcept { return bufs_.total_size(); }

protected:
  // offset: -1 for the current position. hints: the descriptor's
  // (socket_state::io_hints_), which the caller passes once it knows them.
  transfer_op_base(func_type complete, const BufferSequence& buffers, std::int64_t offset) noexcept
    : socket_op(complete, is_read ? io_request::readv : io_request::writev), bufs_(buffers)
  {
    req_.offset = offset;
    if (bufs_.count() == 1)
    {
      req_.kind = is_read ? io_request::read : io_request::write;
      req_.data = bufs_.iov()->iov_base;
      req_.size = bufs_.iov()->iov_len < max_transfer ? bufs_.iov()->iov_len : max_transfer;
    }
    else
    {
      req_.data = bufs_.iov();
      req_.size = bufs_.count();
    }
  }

  void results(boost::system::error_code& ec, std::size_t& n) const noexcept
  {
    int r = result();
    n = 0;
    if (r < 0)
    {
      ec = error_for(r);
      return;
    }
    n = static_cast<std::size_t>(r);
    if (is_read && r == 0 && bufs_.total_size() != 0)
      ec = boost::asio::error::eof;
  }

private:
  socket_buffers<Buffer, BufferSequence, stream_max_buffers> bufs_;
};

template <typename Buffer, typename BufferSequence, typename Handler, typename IoExecutor>
class transfer_op final : public transfer_op_base<Buffer, BufferSequence>
{
  using base_type = transfer_op_base<Buffer, BufferSequence>;

public:
  transfer_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const BufferSequence& buffers, std::int64_t offset)
    : base_type(&do_complete, buffers, offset), handler_(std::move(handler), io_ex, owner)
  {
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<transfer_op*>(base);
    if (!o->finish())
      return;
    boost::system::error_code ec;
    std::size_t n = 0;
    o->results(ec, n);
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, n);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

// fsync or fdatasync of a file (sync_all, sync_data).
template <typename Handler, typename IoExecutor>
class fsync_op final : public socket_op
{
public:
  fsync_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, bool data_only)
    : socket_op(&do_complete, io_request::fsync), handler_(std::move(handler), io_ex, owner)
  {
    req_.flags = data_only ? io_request::fsync_data : 0;
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<fsync_op*>(base);
    if (!o->finish())
      return;
    int r = o->result();
    bound_handler<Handler, IoExecutor>::upcall(owner, o, error_for(r < 0 ? r : 0));
  }

  bound_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_TRANSFER_OP_HPP
