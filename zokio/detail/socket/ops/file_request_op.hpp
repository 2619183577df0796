// zokio/detail/socket/ops/file_request_op.hpp: the file requests other than
// transfers: opening a file, reading its size, truncating or extending it.
//
// On io_uring each is one request where the kernel has the opcode
// (IORING_OP_OPENAT and STATX, linux 5.6; IORING_OP_FTRUNCATE, 6.9; probed:
// uring::features()); on a kernel without it socket_service makes the call
// on the initiating thread and completes the operation as if posted. On the
// readiness backends each is made on the blocking pool (io_request::blocking),
// like a file's reads and writes.
//
// Ownership: an operation belongs to its driver (or to the blocking pool)
// from its start until its completion runs; the buffers it names (the path,
// the statx record) are its own members, so they live exactly as long.
#ifndef ZOKIO_DETAIL_SOCKET_OPS_FILE_REQUEST_OP_HPP
#define ZOKIO_DETAIL_SOCKET_OPS_FILE_REQUEST_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/socket/socket_op.hpp>

#include <cstdint>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace zokio {
namespace detail {

// Opens path and hands the handler a File that owns the descriptor. The
// operation is linked to a state of its own that holds no descriptor
// (socket_service::async_open_file), so per-operation cancellation reaches
// it like any other; a descriptor opened when the completion is destroyed
// rather than run (shutdown) is closed.
template <typename File, typename Handler, typename IoExecutor>
class open_file_op final : public socket_op
{
  using file_executor = typename File::executor_type;

public:
  open_file_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner,
      const file_executor& file_ex, std::string path, int flags)
    : socket_op(&do_complete, io_request::openat),
      handler_(std::move(handler), io_ex, owner),
      file_ex_(file_ex),
      path_(std::move(path))
  {
    req_.data = const_cast<char*>(path_.c_str());
    req_.flags = flags;
    req_.size = 0666;  // less the umask, as basic_file::open
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<open_file_op*>(base);
    if (!o->finish())
      return;
    const int r = o->result();
    if (!owner)
    {
      if (r >= 0)
        ::close(r);
      return bound_handler<Handler, IoExecutor>::discard(o);
    }
    boost::system::error_code ec = error_for(r < 0 ? r : 0);
    File file(o->file_ex_);
    if (r >= 0)
    {
      file.assign(r, ec);
      if (ec)
        ::close(r);
    }
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec, std::move(file));
  }

  bound_handler<Handler, IoExecutor> handler_;
  file_executor file_ex_;
  std::string path_;
};

// The size of the file (statx with STATX_SIZE; fstat where there is no
// statx), handed to the handler as std::uint64_t.
template <typename Handler, typename IoExecutor>
class file_size_op final : public socket_op
{
public:
  file_size_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner)
    : socket_op(&do_complete, io_request::statx), handler_(std::move(handler), io_ex, owner)
  {
    req_.data = &record_;
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<file_size_op*>(base);
    if (!o->finish())
      return;
    const int r = o->result();
#if defined(__linux__)
    const std::uint64_t size = r < 0 ? 0 : static_cast<std::uint64_t>(o->record_.stx_size);
#else
    const std::uint64_t size = r < 0 ? 0 : static_cast<std::uint64_t>(o->record_.st_size);
#endif
    bound_handler<Handler, IoExecutor>::upcall(owner, o, error_for(r < 0 ? r : 0), size);
  }

  bound_handler<Handler, IoExecutor> handler_;
#if defined(__linux__)
  struct ::statx record_{};
#else
  struct ::stat record_{};
#endif
};

// Truncates or extends the file to a length.
template <typename Handler, typename IoExecutor>
class ftruncate_op final : public socket_op
{
public:
  ftruncate_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner, std::int64_t length)
    : socket_op(&do_complete, io_request::ftruncate), handler_(std::move(handler), io_ex, owner)
  {
    req_.offset = length;
  }

private:
  template <typename, typename> friend class bound_handler;

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<ftruncate_op*>(base);
    if (!o->finish())
      return;
    const int r = o->result();
    bound_handler<Handler, IoExecutor>::upcall(owner, o, error_for(r < 0 ? r : 0));
  }

  bound_handler<Handler, IoExecutor> handler_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SOCKET_OPS_FILE_REQUEST_OP_HPP
