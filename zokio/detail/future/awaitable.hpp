// zokio/detail/future/awaitable.hpp: co_await of a zokio::future in a
// boost::asio::awaitable coroutine.
//
// An awaitable coroutine can co_await any Asio asynchronous operation: its
// await_transform wraps the operation in an awaiter (awaitable_async_op)
// that, once the coroutine is suspended, starts the operation with a handler
// chosen by the completion signature (awaitable_async_op_handler); that
// handler resumes the coroutine with the completion's arguments. A future is
// such an operation, completing with void(zokio::future<T>) (itself, ready).
// Two specializations adapt this path to futures:
//
// awaitable_async_op_handler<R(zokio::future<T>), Executor>
//   Resumes the coroutine with get(), so that co_await yields T or throws
//   the operation's failure. (The signature Asio's co_spawn uses,
//   void(std::exception_ptr, T), cannot be awaited this way in Boost 1.81:
//   its handler's resume step does not compile; void(error_code, T) cannot
//   carry an arbitrary exception.)
//
// awaitable_async_op<Signature, F, Executor> for a future type F
//   Accepts an lvalue future (Boost 1.81's awaiter binds only rvalues, so
//   `co_await f` would not compile), and does not suspend at all when the
//   future is already ready.
//
// Both follow the protocol of Asio's own types for this path (Boost 1.81,
// boost/asio/impl/awaitable.hpp): the handler takes over the coroutine's
// thread of execution from the suspended frame; when called it records where
// its argument is, re-attaches the thread to the top frame, clears the
// frame's cancellation slot and resumes ("pumps") the frames, whose
// await_resume then reads the argument.
#ifndef ZOKIO_DETAIL_FUTURE_AWAITABLE_HPP
#define ZOKIO_DETAIL_FUTURE_AWAITABLE_HPP

#include <boost/asio/detail/config.hpp>

#if defined(BOOST_ASIO_HAS_CO_AWAIT)

#include <boost/asio/awaitable.hpp>

#include <exception>
#include <future>
#include <type_traits>
#include <utility>

namespace zokio {

template <typename T>
class future;

namespace detail {

// True for zokio::future<T> and types derived from it (join_handle<T>).
template <typename F>
concept future_type = requires { typename F::value_type; }
  && std::is_base_of_v<future<typename F::value_type>, F>;

} // namespace detail
} // namespace zokio

namespace boost {
namespace asio {
namespace detail {

template <typename R, typename T, typename Executor>
class awaitable_async_op_handler<R(zokio::future<T>), Executor>
  : public awaitable_thread<Executor>
{
public:
  // Where the ready future is while the coroutine resumes.
  using result_type = zokio::future<T>*;

  awaitable_async_op_handler(awaitable_thread<Executor>* h, result_type& result)
    : awaitable_thread<Executor>(std::move(*h)), result_(result)
  {
  }

  void operator()(zokio::future<T> ready)
  {
    result_ = &ready;
    auto* top = this->entry_point()->top_of_stack_;
    top->attach_thread(this);
    top->clear_cancellation_slot();
    this->pump();
  }

  // The coroutine's executor, read in place (zokio's continuation checks
  // whether it may resume the coroutine inline without copying it).
  const Executor& zokio_executor_ref() noexcept
  {
    return this->entry_point()->u_.executor_;
  }

  // Called by the resumed coroutine: the value of the co_await expression.
  static T resume(result_type& result)
  {
    return zokio::detail::future_access::take_ready(*result);
  }

private:
  result_type& result_;
};

template <typename Signature, typename Future, typename Executor>
  requires zokio::detail::future_type<Future>
class awaitable_async_op<Signature, Future, Executor>
{
public:
  using handler_type = awaitable_async_op_handler<Signature, Executor>;

  awaitable_async_op(Future& f, awaitable_frame_base<Executor>* frame) noexcept
    : future_(&f), frame_(frame)
  {
  }

  awaitable_async_op(Future&& f, awaitable_frame_base<Executor>* frame) noexcept
    : future_(&f), frame_(frame)
  {
  }

  // A ready future is read at once, without suspending.
  bool await_ready() const noexcept { return future_->ready(); }

  void await_suspend(coroutine_handle<void>)
  {
    // Attach the continuation only once the coroutine is suspended: the
    // operation may complete at once on another thread and resume it.
    // (What future::operator() does, without the async_initiate layers.)
    frame_->after_suspend(
        [](void* arg)
        {
          auto* self = static_cast<awaitable_async_op*>(arg);
          using value_type = typename Future::value_type;
          auto* s = zokio::detail::future_access::release<value_type>(*self->future_);
          if (s == nullptr)
          {
            s = zokio::detail::make_failed_state<value_type>(std::make_exception_ptr(
                  std::future_error(std::future_errc::no_state)));
          }
          zokio::detail::attach_handler<zokio::detail::future_shape>(
              s, handler_type(self->frame_->detach_thread(), self->result_));
        }, this);
  }

  auto await_resume()
  {
    if (result_)
      return handler_type::resume(result_);
    return future_->get();
  }

private:
  Future* future_;
  awaitable_frame_base<Executor>* frame_;
  typename handler_type::result_type result_ = nullptr;
};

} // namespace detail
} // namespace asio
} // namespace boost

#endif // defined(BOOST_ASIO_HAS_CO_AWAIT)

#endif // ZOKIO_DETAIL_FUTURE_AWAITABLE_HPP
