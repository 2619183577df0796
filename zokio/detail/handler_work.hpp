// zokio/detail/handler_work.hpp: how a completion reaches its handler.
#ifndef ZOKIO_DETAIL_HANDLER_WORK_HPP
#define ZOKIO_DETAIL_HANDLER_WORK_HPP

#include <zokio/io_context.hpp>
#include <zokio/thread_pool.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/prefer.hpp>

#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// An executor of a zokio context.
template <typename Executor>
concept zokio_executor = requires(const Executor& e) {
  { e.zokio_scheduler() } -> std::same_as<scheduler&>;
};

// The scheduler behind an executor: its own if it is a zokio executor, the
// target's if it is a polymorphic executor (any_io_executor,
// any_completion_executor, boost::asio::executor) holding zokio's default
// executor types (io_context's or thread_pool's), otherwise null.
template <typename Executor>
scheduler* scheduler_of(const Executor& ex) noexcept
{
  if constexpr (zokio_executor<Executor>)
  {
    return &ex.zokio_scheduler();
  }
  else if constexpr (requires { ex.template target<io_context::executor_type>(); })
  {
    if (const auto* t = ex.template target<io_context::executor_type>())
      return &t->zokio_scheduler();
    if (const auto* t = ex.template target<thread_pool::executor_type>())
      return &t->zokio_scheduler();
    return nullptr;
  }
  else
  {
    return nullptr;
  }
}

// Decides, when an operation starts, how its handler will be invoked, and
// keeps the handler's executor busy meanwhile when that is needed.
//
// If the handler's associated executor belongs to the scheduler that
// completes the operation (directly, or inside a polymorphic executor), the
// run loop invokes the handler itself: it is already on a thread of that
// executor, and the operation is counted as the scheduler's work. Otherwise
// (a strand, another context, a user executor) the executor is told about
// outstanding work (outstanding_work.tracked) until the handler is handed to
// it, as Asio's handler_work does.
template <typename Handler, typename IoExecutor>
class handler_work
{
public:
  using executor_type = boost::asio::associated_executor_t<Handler, IoExecutor>;

  handler_work(const Handler& handler, const IoExecutor& io_ex, scheduler& owner) noexcept
  {
    executor_type ex = boost::asio::get_associated_executor(handler, io_ex);
    if (scheduler_of(ex) != &owner)
      work_.emplace(track(ex));
  }

  handler_work(handler_work&&) = default;
  handler_work& operator=(handler_work&&) = delete;

  // Invokes function (the handler bound to its arguments), on this thread or
  // through the handler's executor.
  template <typename Function>
  void complete(Function& function, const Handler& handler)
  {
    if (!work_)
    {
      std::move(function)();
      return;
    }
    if constexpr (boost::asio::execution::is_executor<executor_type>::value)
    {
      boost::asio::execution::execute(
          boost::asio::prefer(*work_, boost::asio::execution::blocking.possibly,
              boost::asio::execution::allocator(boost::asio::get_associated_allocator(handler))),
          std::move(function));
    }
    else
    {
      work_->get_executor().dispatch(std::move(function),
          boost::asio::get_associated_allocator(handler));
    }
    work_.reset();
  }

private:
  static auto track(const executor_type& ex)
  {
    if constexpr (boost::asio::execution::is_executor<executor_type>::value)
      return boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
    else
      return boost::asio::make_work_guard(ex);
  }

  std::optional<decltype(track(std::declval<const executor_type&>()))> work_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_HANDLER_WORK_HPP
