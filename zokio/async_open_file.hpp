// zokio/async_open_file.hpp: opening a file without blocking the thread.
#ifndef ZOKIO_ASYNC_OPEN_FILE_HPP
#define ZOKIO_ASYNC_OPEN_FILE_HPP

#include <zokio/file_base.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/socket/socket_service.hpp>

#include <boost/asio/async_result.hpp>

#include <string>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

template <typename File>
class initiate_open_file
{
public:
  using executor_type = typename File::executor_type;

  explicit initiate_open_file(const executor_type& ex) : ex_(ex) {}

  executor_type get_executor() const noexcept { return ex_; }

  template <typename Handler>
  void operator()(Handler&& handler, std::string path, file_base::flags open_flags) const
  {
    scheduler& s = io_scheduler_or_throw(ex_, "zokio::async_open_file");
    socket_service& service = boost::asio::use_service<socket_service>(s.context());
    std::decay_t<Handler> h(std::forward<Handler>(handler));
    service.template async_open_file<File>(
        ex_, std::move(path), static_cast<int>(open_flags), h, ex_);
  }

private:
  executor_type ex_;
};

} // namespace detail

/// Opens path with open_flags and hands the handler an open File
/// (zokio::stream_file, zokio::random_access_file or another basic_file
/// type) on ex.
/**
 * The file is opened as File's open() would open it (close-on-exec, mode
 * 0666 less the umask when created), without blocking the thread: one
 * IORING_OP_OPENAT on io_uring (on a kernel without it, the open(2) call is
 * made on the initiating thread), a call on the blocking pool on epoll and
 * kqueue. Per-operation cancellation is supported; an open that the kernel
 * has already made when the cancellation arrives completes with the file.
 *
 * @code void(boost::system::error_code, File file) @endcode
 * On failure the File is closed and the error is open(2)'s (no_such_file_or_directory,
 * permission_denied, file_exists with exclusive...).
 */
template <typename File, typename OpenToken = boost::asio::default_completion_token_t<
    typename File::executor_type>>
auto async_open_file(const typename File::executor_type& ex, std::string path,
    file_base::flags open_flags,
    OpenToken&& token = boost::asio::default_completion_token_t<typename File::executor_type>())
{
  return boost::asio::async_initiate<OpenToken, void(boost::system::error_code, File)>(
      detail::initiate_open_file<File>(ex), token, std::move(path), open_flags);
}

/// As above, with File's executor made from context.
template <typename File, typename ExecutionContext,
    typename OpenToken = boost::asio::default_completion_token_t<typename File::executor_type>>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
auto async_open_file(ExecutionContext& context, std::string path, file_base::flags open_flags,
    OpenToken&& token = boost::asio::default_completion_token_t<typename File::executor_type>())
{
  return async_open_file<File>(typename File::executor_type(context.get_executor()),
      std::move(path), open_flags, std::forward<OpenToken>(token));
}

} // namespace zokio

#endif // ZOKIO_ASYNC_OPEN_FILE_HPP
