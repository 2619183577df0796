// zokio/detail/io_scheduler.hpp: the zokio scheduler an I/O object's
// executor leads to.
#ifndef ZOKIO_DETAIL_IO_SCHEDULER_HPP
#define ZOKIO_DETAIL_IO_SCHEDULER_HPP

#include <zokio/detail/handler_work.hpp>
#include <zokio/error.hpp>
#include <zokio/io_context.hpp>
#include <zokio/thread_pool.hpp>

#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>

namespace zokio {
namespace detail {

template <typename T>
struct is_asio_strand : std::false_type
{
};

template <typename Inner>
struct is_asio_strand<boost::asio::strand<Inner>> : std::true_type
{
};

// The scheduler behind an I/O object's executor: a zokio executor, a strand
// over one, or a polymorphic executor (any_io_executor, ...) holding either
// io_context::executor_type, thread_pool::executor_type or a strand of
// either. Null for anything else.
template <typename Executor>
scheduler* io_scheduler_of(const Executor& ex) noexcept
{
  if constexpr (is_asio_strand<Executor>::value)
  {
    return io_scheduler_of(ex.get_inner_executor());
  }
  else
  {
    if (scheduler* s = scheduler_of(ex))
      return s;
    if constexpr (requires { ex.template target<boost::asio::strand<io_context::executor_type>>(); })
    {
      if (const auto* t = ex.template target<boost::asio::strand<io_context::executor_type>>())
        return &t->get_inner_executor().zokio_scheduler();
      if (const auto* t = ex.template target<boost::asio::strand<thread_pool::executor_type>>())
        return &t->get_inner_executor().zokio_scheduler();
    }
    return nullptr;
  }
}

// As io_scheduler_of, but throws boost::system::system_error with
// zokio::error::not_a_zokio_executor (naming the I/O object) when the
// executor does not lead to a zokio scheduler.
template <typename Executor>
scheduler& io_scheduler_or_throw(const Executor& ex, const char* what)
{
  scheduler* s = io_scheduler_of(ex);
  if (s == nullptr)
    throw boost::system::system_error(make_error_code(error::not_a_zokio_executor), what);
  return *s;
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_IO_SCHEDULER_HPP
