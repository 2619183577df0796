// zokio/impl/io_context.hpp: template definitions of zokio/io_context.hpp.
#ifndef ZOKIO_IMPL_IO_CONTEXT_HPP
#define ZOKIO_IMPL_IO_CONTEXT_HPP

#include <zokio/detail/executor_op.hpp>

#include <boost/asio/detail/wrapped_handler.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <type_traits>
#include <utility>

namespace zokio {

inline io_context::executor_type io_context::get_executor() noexcept
{
  return executor_type(*this);
}

namespace detail {

inline std::int64_t to_steady_deadline_ns(std::chrono::steady_clock::time_point t) noexcept
{
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A deadline of another clock, as a steady_clock deadline measured now.
template <typename Clock, typename Duration>
std::int64_t to_steady_deadline_ns(const std::chrono::time_point<Clock, Duration>& t)
{
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>)
  {
    return to_steady_deadline_ns(
        std::chrono::time_point_cast<std::chrono::steady_clock::duration>(t));
  }
  else
  {
    auto left = t - Clock::now();
    auto now = std::chrono::steady_clock::now();
    if (left <= decltype(left)::zero())
      return to_steady_deadline_ns(now);
    auto left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left);
    return to_steady_deadline_ns(now) + left_ns.count();
  }
}

} // namespace detail

template <typename Rep, typename Period>
std::size_t io_context::run_for(const std::chrono::duration<Rep, Period>& rel_time)
{
  return run_until(std::chrono::steady_clock::now() + rel_time);
}

template <typename Clock, typename Duration>
std::size_t io_context::run_until(const std::chrono::time_point<Clock, Duration>& abs_time)
{
  return impl_.run_until(detail::to_steady_deadline_ns(abs_time));
}

template <typename Rep, typename Period>
std::size_t io_context::run_one_for(const std::chrono::duration<Rep, Period>& rel_time)
{
  return run_one_until(std::chrono::steady_clock::now() + rel_time);
}

template <typename Clock, typename Duration>
std::size_t io_context::run_one_until(const std::chrono::time_point<Clock, Duration>& abs_time)
{
  return impl_.run_one_until(detail::to_steady_deadline_ns(abs_time));
}

template <typename Service>
Service& io_context::use_zokio_service()
{
  if constexpr (std::is_constructible_v<Service, boost::asio::execution_context&>)
  {
    return boost::asio::use_service<Service>(
        static_cast<boost::asio::execution_context&>(*this));
  }
  else
  {
    std::lock_guard<std::mutex> lock(services_.mutex());
    if (auto* found = services_.find(&Service::id))
      return *static_cast<Service*>(found);
    // Not created yet (one added through execution_context& rather than
    // this context is not in the index: add_service below then reports
    // service_already_exists).
    auto svc = std::make_unique<Service>(*this);
    boost::asio::add_service<Service>(static_cast<boost::asio::execution_context&>(*this), svc.get());
    services_.record(&Service::id, svc.get());
    return *svc.release();
  }
}

template <typename Service>
void io_context::add_zokio_service(Service* svc)
{
  std::lock_guard<std::mutex> lock(services_.mutex());
  // Asio's checks first: the owner, and whether the key is taken.
  boost::asio::add_service<Service>(static_cast<boost::asio::execution_context&>(*this), svc);
  services_.record(&Service::id, svc);
}

#if !defined(BOOST_ASIO_NO_DEPRECATED)

struct io_context::initiate_dispatch
{
  template <typename Handler>
  void operator()(Handler&& handler, io_context* self) const
  {
    std::decay_t<Handler> h(std::forward<Handler>(handler));
    if (self->impl_.can_dispatch())
    {
      std::move(h)();
    }
    else
    {
      auto* op = detail::executor_op<std::decay_t<Handler>, std::allocator<void>>::create(
          std::move(h), std::allocator<void>());
      self->impl_.post_immediate(op, false);
    }
  }
};

struct io_context::initiate_post
{
  template <typename Handler>
  void operator()(Handler&& handler, io_context* self) const
  {
    auto* op = detail::executor_op<std::decay_t<Handler>, std::allocator<void>>::create(
        std::forward<Handler>(handler), std::allocator<void>());
    self->impl_.post_immediate(op, false);
  }
};

template <typename LegacyCompletionHandler>
auto io_context::dispatch(LegacyCompletionHandler&& handler)
{
  return boost::asio::async_initiate<LegacyCompletionHandler, void()>(
      initiate_dispatch(), handler, this);
}

template <typename LegacyCompletionHandler>
auto io_context::post(LegacyCompletionHandler&& handler)
{
  return boost::asio::async_initiate<LegacyCompletionHandler, void()>(
      initiate_post(), handler, this);
}

template <typename Handler>
auto io_context::wrap(Handler handler)
{
  return boost::asio::detail::wrapped_handler<io_context&, Handler>(*this, handler);
}

template <typename Handler>
auto io_context::strand::wrap(Handler handler)
{
  return boost::asio::detail::wrapped_handler<io_context::strand, Handler,
      boost::asio::detail::is_continuation_if_running>(*this, handler);
}

#endif // !defined(BOOST_ASIO_NO_DEPRECATED)

} // namespace zokio

#endif // ZOKIO_IMPL_IO_CONTEXT_HPP
