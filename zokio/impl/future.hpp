// zokio/impl/future.hpp: template definitions of zokio/future.hpp.
#ifndef ZOKIO_IMPL_FUTURE_HPP
#define ZOKIO_IMPL_FUTURE_HPP

#include <zokio/detail/sched/scheduler.hpp>

#include <concepts>
#include <future>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// A ready state holding a failure (for futures made from nothing).
template <typename T>
future_state<T>* make_failed_state(std::exception_ptr e)
{
  auto* s = op_state<T, std::allocator<void>>::create(std::allocator<void>());
  s->set_exception(std::move(e));
  s->complete(resume_mode::post);
  return s;
}

template <typename T>
future<T> make_failed_future(std::exception_ptr e)
{
  return future_access::adopt(make_failed_state<T>(std::move(e)));
}

// Initiation of then() and operator(): attaches the handler to the state.
template <typename T, typename Shape>
struct initiate_continue
{
  template <typename Handler>
  void operator()(Handler&& handler, future<T> f) const
  {
    future_state<T>* s = future_access::release(f);
    if (s == nullptr)
    {
      s = make_failed_state<T>(std::make_exception_ptr(
            std::future_error(std::future_errc::no_state)));
    }
    attach_handler<Shape>(s, std::forward<Handler>(handler));
  }
};

// The context that will complete an operation about to be initiated: the
// scheduler the initiation names (zokio's I/O objects: their service's), or
// that of its I/O executor if it has one (exact: the operation's work is
// counted there), otherwise the context the calling thread runs, if any (a
// guess, used for deadlock detection and timers).
template <typename Initiation>
void set_home_from(future_state_base* s, const Initiation& init) noexcept
{
  if constexpr (requires { { init.zokio_scheduler() } -> std::same_as<scheduler&>; })
  {
    // Cheaper than scheduler_of(init.get_executor()), which copies a
    // polymorphic executor and compares type_info.
    s->set_home(&init.zokio_scheduler(), true);
    return;
  }
  else if constexpr (requires { init.get_executor(); })
  {
    if (scheduler* h = scheduler_of(init.get_executor()))
    {
      s->set_home(h, true);
      return;
    }
  }
  if (runner* r = current_runner)
    s->set_home(&r->owner(), false);
}

} // namespace detail

template <typename T>
future<T>::future(future&& other) noexcept
  : state_(std::exchange(other.state_, nullptr))
{
}

template <typename T>
future<T>& future<T>::operator=(future&& other) noexcept
{
  if (this != &other)
  {
    future tmp(std::move(*this));
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

template <typename T>
future<T>::~future()
{
  if (state_)
  {
    if (!state_->ready())
      state_->cancel(boost::asio::cancellation_type::terminal);
    state_->release();
  }
}

template <typename T>
void future<T>::detach() noexcept
{
  if (state_)
    std::exchange(state_, nullptr)->release();
}

template <typename T>
void future<T>::require_state() const
{
  if (state_ == nullptr)
    throw std::future_error(std::future_errc::no_state);
}

template <typename T>
bool future<T>::ready() const noexcept
{
  return state_ != nullptr && state_->ready();
}

template <typename T>
void future<T>::wait()
{
  require_state();
  state_->wait();
}

template <typename T>
T future<T>::get()
{
  require_state();
  state_->wait();
  detail::state_ref ref(std::exchange(state_, nullptr));
  return static_cast<detail::future_state<T>*>(ref.get())->take();
}

template <typename T>
void future<T>::cancel(boost::asio::cancellation_type_t type) noexcept
{
  if (state_)
    state_->cancel(type);
}

template <typename T>
template <typename CompletionToken>
  requires boost::asio::completion_token_for<CompletionToken,
      typename detail::then_signature<T>::type>
auto future<T>::then(CompletionToken&& token)
{
  return boost::asio::async_initiate<CompletionToken, typename detail::then_signature<T>::type>(
      detail::initiate_continue<T, detail::then_shape>(), token, std::move(*this));
}

template <typename T>
template <typename CompletionToken>
  requires boost::asio::completion_token_for<CompletionToken, void(future<T>)>
auto future<T>::operator()(CompletionToken&& token)
{
  return boost::asio::async_initiate<CompletionToken, void(future<T>)>(
      detail::initiate_continue<T, detail::future_shape>(), token, std::move(*this));
}

} // namespace zokio

namespace boost {
namespace asio {

/// Makes an operation started with zokio::use_future return a zokio::future.
template <typename Allocator, typename R, typename... Args>
class async_result<zokio::use_future_t<Allocator>, R(Args...)>
{
  using traits = zokio::detail::future_traits<std::decay_t<Args>...>;
  using value_type = typename traits::value_type;

public:
  using return_type = zokio::future<value_type>;

  template <typename Initiation, typename... InitArgs>
  static return_type initiate(Initiation&& initiation,
      zokio::use_future_t<Allocator> token, InitArgs&&... args)
  {
    using state_type = zokio::detail::op_state<value_type, Allocator>;
    using handler_type = zokio::detail::future_handler<traits, Allocator>;
    state_type* s = state_type::create(token.get_allocator());
    zokio::detail::set_home_from(s, initiation);
    return_type f = zokio::detail::future_access::adopt<value_type>(s);
    static_cast<Initiation&&>(initiation)(
        handler_type(s, token.get_allocator()), static_cast<InitArgs&&>(args)...);
    return f;
  }
};

} // namespace asio
} // namespace boost

#include <zokio/detail/future/awaitable.hpp>

#endif // ZOKIO_IMPL_FUTURE_HPP
