// zokio/basic_file.hpp: the base of zokio's files (stream_file,
// random_access_file), with the interface of boost::asio::basic_file.
#ifndef ZOKIO_BASIC_FILE_HPP
#define ZOKIO_BASIC_FILE_HPP

#include <zokio/file_base.hpp>
#include <zokio/posix/basic_descriptor.hpp>

#include <boost/asio/detail/throw_error.hpp>

#include <cerrno>
#include <cstdint>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace zokio {

/// A regular file opened on a zokio context.
/**
 * The interface of boost::asio::basic_file (Boost 1.81): open, close,
 * release, cancel, size, resize, sync_all, sync_data; the derived
 * stream_file and random_access_file add the reads and writes. zokio adds
 * forms that do not block the thread: async_sync_all / async_sync_data,
 * async_size, async_resize, and zokio::async_open_file (async_open_file.hpp).
 *
 * On io_uring the transfers are IORING_OP_READ / WRITE / READV / WRITEV,
 * the syncs IORING_OP_FSYNC, async_size IORING_OP_STATX, async_resize
 * IORING_OP_FTRUNCATE and async_open_file IORING_OP_OPENAT. Each is probed:
 * on a kernel without the opcode (FTRUNCATE needs linux 6.9; OPENAT and
 * STATX 5.6) that one call is made on the initiating thread, as its
 * synchronous form would, and the handler still runs as if posted. On
 * epoll and kqueue a regular file is
 * never "ready": each call is made on zokio's blocking pool, a small
 * process-wide set of threads (at most ZOKIO_BLOCKING_THREADS, default 8,
 * started on first use), and the completion comes back to the thread that
 * started it; zokio::statistics counts them (blocking_calls). No call that
 * can wait for the disk is made on a thread that runs the context. A
 * transfer in progress on the pool cannot be interrupted: cancelling it
 * takes effect only if it has not started.
 *
 * Reads whose data the page cache holds are made at once, on every backend:
 * one preadv2 with RWF_NOWAIT on the initiating thread, the handler then
 * running as if posted (a stream file only when no other operation of it
 * is in flight, so its reads stay in order). Only a read that would wait
 * for the disk goes to the ring or to the pool. Never for a file opened with
 * O_DIRECT; ZOKIO_FILE_READ_NOWAIT=0 turns it off.
 *
 * Files are opened close-on-exec, with mode 0666 (less the umask) when
 * created.
 *
 * @par Thread Safety
 * @e Distinct @e objects: Safe.@n
 * @e Shared @e objects: Unsafe (cancel() excepted: any thread).
 */
template <typename Executor = boost::asio::any_io_executor>
class basic_file : public file_base, protected posix::basic_descriptor<Executor>
{
  using base_type = posix::basic_descriptor<Executor>;

public:
  using executor_type = Executor;
  using native_handle_type = int;

  template <typename Executor1>
  struct rebind_executor
  {
    using other = basic_file<Executor1>;
  };

  explicit basic_file(const executor_type& ex) : base_type(ex) {}

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  explicit basic_file(ExecutionContext& context) : base_type(context)
  {
  }

  /// Opens path with open_flags.
  basic_file(const executor_type& ex, const char* path, file_base::flags open_flags)
    : base_type(ex)
  {
    open(path, open_flags);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_file(ExecutionContext& context, const char* path, file_base::flags open_flags)
    : base_type(context)
  {
    open(path, open_flags);
  }

  basic_file(const executor_type& ex, const std::string& path, file_base::flags open_flags)
    : basic_file(ex, path.c_str(), open_flags)
  {
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_file(ExecutionContext& context, const std::string& path, file_base::flags open_flags)
    : basic_file(context, path.c_str(), open_flags)
  {
  }

  /// Takes ownership of native_file.
  basic_file(const executor_type& ex, const native_handle_type& native_file) : base_type(ex)
  {
    assign(native_file);
  }

  template <typename ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  basic_file(ExecutionContext& context, const native_handle_type& native_file)
    : base_type(context)
  {
    assign(native_file);
  }

  basic_file(basic_file&& other) noexcept = default;
  basic_file& operator=(basic_file&& other) = default;

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_file(basic_file<Executor1>&& other)
    : base_type(std::move(static_cast<posix::basic_descriptor<Executor1>&>(other)))
  {
  }

  template <typename Executor1>
    requires std::is_constructible_v<Executor, const Executor1&>
  basic_file& operator=(basic_file<Executor1>&& other)
  {
    base_type::operator=(std::move(static_cast<posix::basic_descriptor<Executor1>&>(other)));
    return *this;
  }

  using base_type::get_executor;
  using base_type::is_open;
  using base_type::native_handle;

  /// Opens path (already_open if a file is open).
  void open(const char* path, file_base::flags open_flags)
  {
    boost::system::error_code ec;
    open(path, open_flags, ec);
    boost::asio::detail::throw_error(ec, "open");
  }

  void open(const char* path, file_base::flags open_flags, boost::system::error_code& ec)
  {
    if (this->is_open())
    {
      ec = boost::asio::error::already_open;
      return;
    }
    int fd;
    do
      fd = ::open(path, static_cast<int>(open_flags) | O_CLOEXEC, 0666);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
    {
      ec.assign(errno, boost::asio::error::get_system_category());
      return;
    }
    this->assign_with(fd, detail::io_request::blocking, ec);
    if (ec)
      ::close(fd);
  }

  void open(const std::string& path, file_base::flags open_flags)
  {
    open(path.c_str(), open_flags);
  }

  void open(const std::string& path, file_base::flags open_flags, boost::system::error_code& ec)
  {
    open(path.c_str(), open_flags, ec);
  }

  /// Takes ownership of native_file.
  void assign(const native_handle_type& native_file)
  {
    boost::system::error_code ec;
    assign(native_file, ec);
    boost::asio::detail::throw_error(ec, "assign");
  }

  void assign(const native_handle_type& native_file, boost::system::error_code& ec)
  {
    this->assign_with(native_file, detail::io_request::blocking, ec);
  }

  /// Closes the file; pending operations complete with operation_aborted
  /// (those already being made on the blocking pool complete first).
  void close()
  {
    boost::system::error_code ec;
    close(ec);
    boost::asio::detail::throw_error(ec, "close");
  }

  void close(boost::system::error_code& ec) { base_type::close(ec); }

  /// Gives the descriptor up without closing it.
  native_handle_type release()
  {
    boost::system::error_code ec;
    native_handle_type fd = release(ec);
    boost::asio::detail::throw_error(ec, "release");
    return fd;
  }

  native_handle_type release(boost::system::error_code& ec)
  {
    return this->service_->release(this->state_, ec);
  }

  void cancel()
  {
    boost::system::error_code ec;
    cancel(ec);
    boost::asio::detail::throw_error(ec, "cancel");
  }

  void cancel(boost::system::error_code& ec) { base_type::cancel(ec); }

  /// The size of the file in bytes.
  std::uint64_t size() const
  {
    boost::system::error_code ec;
    std::uint64_t n = size(ec);
    boost::asio::detail::throw_error(ec, "size");
    return n;
  }

  std::uint64_t size(boost::system::error_code& ec) const
  {
    struct stat st;
    if (::fstat(this->fd(), &st) != 0)
    {
      ec.assign(errno, boost::asio::error::get_system_category());
      return 0;
    }
    ec = boost::system::error_code();
    return static_cast<std::uint64_t>(st.st_size);
  }

  /// Truncates or extends the file to n bytes.
  void resize(std::uint64_t n)
  {
    boost::system::error_code ec;
    resize(n, ec);
    boost::asio::detail::throw_error(ec, "resize");
  }

  void resize(std::uint64_t n, boost::system::error_code& ec)
  {
    if (::ftruncate(this->fd(), static_cast<::off_t>(n)) != 0)
      ec.assign(errno, boost::asio::error::get_system_category());
    else
      ec = boost::system::error_code();
  }

  /// Writes the file's data and metadata to the disk (fsync, blocking).
  void sync_all()
  {
    boost::system::error_code ec;
    sync_all(ec);
    boost::asio::detail::throw_error(ec, "sync_all");
  }

  void sync_all(boost::system::error_code& ec) { sync(false, ec); }

  /// Writes the file's data to the disk (fdatasync, blocking).
  void sync_data()
  {
    boost::system::error_code ec;
    sync_data(ec);
    boost::asio::detail::throw_error(ec, "sync_data");
  }

  void sync_data(boost::system::error_code& ec) { sync(true, ec); }

  /// sync_all without blocking the thread (IORING_OP_FSYNC, or the
  /// blocking pool).
  /**
   * @param token The completion token, with signature
   * @code void(boost::system::error_code) @endcode
   */
  template <typename SyncToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_sync_all(SyncToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<SyncToken, void(boost::system::error_code)>(
        initiate_sync(this), token, false);
  }

  /// sync_data without blocking the thread (IORING_FSYNC_DATASYNC).
  template <typename SyncToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_sync_data(SyncToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<SyncToken, void(boost::system::error_code)>(
        initiate_sync(this), token, true);
  }

  /// size() without blocking the thread: statx (IORING_OP_STATX on io_uring).
  /**
   * @code void(boost::system::error_code, std::uint64_t size) @endcode
   */
  template <typename SizeToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_size(SizeToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<SizeToken, void(boost::system::error_code, std::uint64_t)>(
        initiate_size(this), token);
  }

  /// resize() without blocking the thread: ftruncate (IORING_OP_FTRUNCATE
  /// on io_uring, linux 6.9).
  /**
   * @code void(boost::system::error_code) @endcode
   */
  template <typename ResizeToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_resize(std::uint64_t n,
      ResizeToken&& token = boost::asio::default_completion_token_t<executor_type>())
  {
    return boost::asio::async_initiate<ResizeToken, void(boost::system::error_code)>(
        initiate_resize(this), token, n);
  }

protected:
  ~basic_file() = default;

  void sync(bool data_only, boost::system::error_code& ec)
  {
    const int fd = this->fd();
#if defined(__APPLE__)
    (void)data_only;
    const int r = ::fsync(fd);
#else
    const int r = data_only ? ::fdatasync(fd) : ::fsync(fd);
#endif
    if (r != 0)
      ec.assign(errno, boost::asio::error::get_system_category());
    else
      ec = boost::system::error_code();
  }

  // A file offset as the request carries it; beyond INT64_MAX the kernel
  // refuses it (EINVAL), as pread would.
  static std::int64_t request_offset(std::uint64_t offset) noexcept
  {
    return offset > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX
                                                           : static_cast<std::int64_t>(offset);
  }

  template <typename> friend class basic_file;

private:
  class initiate_sync
  {
  public:
    using executor_type = Executor;

    explicit initiate_sync(basic_file* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename Handler>
    void operator()(Handler&& handler, bool data_only) const
    {
      std::decay_t<Handler> h(std::forward<Handler>(handler));
      self_->service_->async_fsync(self_->state_, data_only, h, self_->executor_);
    }

  private:
    basic_file* self_;
  };

  class initiate_size
  {
  public:
    using executor_type = Executor;

    explicit initiate_size(basic_file* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename Handler>
    void operator()(Handler&& handler) const
    {
      std::decay_t<Handler> h(std::forward<Handler>(handler));
      self_->service_->async_file_size(self_->state_, h, self_->executor_);
    }

  private:
    basic_file* self_;
  };

  class initiate_resize
  {
  public:
    using executor_type = Executor;

    explicit initiate_resize(basic_file* self) noexcept : self_(self) {}

    executor_type get_executor() const noexcept { return self_->get_executor(); }

    template <typename Handler>
    void operator()(Handler&& handler, std::uint64_t n) const
    {
      std::decay_t<Handler> h(std::forward<Handler>(handler));
      self_->service_->async_ftruncate(self_->state_, request_offset(n), h, self_->executor_);
    }

  private:
    basic_file* self_;
  };
};

} // namespace zokio

#endif // ZOKIO_BASIC_FILE_HPP
