// zokio/detail/future/future_handler.hpp: the completion handler that the
// use_future token gives an operation: it stores the completion's arguments
// in the shared state and wakes the waiter.
#ifndef ZOKIO_DETAIL_FUTURE_FUTURE_HANDLER_HPP
#define ZOKIO_DETAIL_FUTURE_FUTURE_HANDLER_HPP

#include <zokio/detail/future/shared_state.hpp>

#include <boost/system/error_code.hpp>

#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// The value type of a future for a completion with arguments Args (decayed),
// and how the arguments are stored. As with Asio's use_future: a leading
// error_code or exception_ptr is the failure, the rest is the value: nothing
// (void), one value, or a tuple of several.
template <typename... Args>
struct future_traits
{
  using value_type = std::tuple<Args...>;

  template <typename State, typename... A>
  static void deliver(State* s, A&&... a)
  {
    s->set_value(std::forward<A>(a)...);
  }
};

template <>
struct future_traits<>
{
  using value_type = void;

  template <typename State>
  static void deliver(State* s)
  {
    s->set_value();
  }
};

template <typename A>
struct future_traits<A>
{
  using value_type = A;

  template <typename State, typename V>
  static void deliver(State* s, V&& v)
  {
    s->set_value(std::forward<V>(v));
  }
};

template <>
struct future_traits<boost::system::error_code>
{
  using value_type = void;

  template <typename State>
  static void deliver(State* s, const boost::system::error_code& ec)
  {
    if (ec)
      s->set_error(ec);
    else
      s->set_value();
  }
};

template <>
struct future_traits<std::exception_ptr>
{
  using value_type = void;

  template <typename State>
  static void deliver(State* s, std::exception_ptr e)
  {
    if (e)
      s->set_exception(std::move(e));
    else
      s->set_value();
  }
};

template <typename A>
struct future_traits<boost::system::error_code, A>
{
  using value_type = A;

  template <typename State, typename V>
  static void deliver(State* s, const boost::system::error_code& ec, V&& v)
  {
    if (ec)
      s->set_error(ec);
    else
      s->set_value(std::forward<V>(v));
  }
};

template <typename A>
struct future_traits<std::exception_ptr, A>
{
  using value_type = A;

  template <typename State, typename V>
  static void deliver(State* s, std::exception_ptr e, V&& v)
  {
    if (e)
      s->set_exception(std::move(e));
    else
      s->set_value(std::forward<V>(v));
  }
};

template <typename A, typename B, typename... C>
struct future_traits<boost::system::error_code, A, B, C...>
{
  using value_type = std::tuple<A, B, C...>;

  template <typename State, typename... V>
  static void deliver(State* s, const boost::system::error_code& ec, V&&... v)
  {
    if (ec)
      s->set_error(ec);
    else
      s->set_value(std::forward<V>(v)...);
  }
};

template <typename A, typename B, typename... C>
struct future_traits<std::exception_ptr, A, B, C...>
{
  using value_type = std::tuple<A, B, C...>;

  template <typename State, typename... V>
  static void deliver(State* s, std::exception_ptr e, V&&... v)
  {
    if (e)
      s->set_exception(std::move(e));
    else
      s->set_value(std::forward<V>(v)...);
  }
};

// The handler. Move-only; invoked at most once. Destroyed without being
// invoked (its operation was abandoned, for example when the context shut
// down), it completes the state with std::future_errc::broken_promise, and
// the waiting continuation is scheduled rather than run from the destructor.
template <typename Traits, typename Allocator>
class future_handler
{
public:
  using value_type = typename Traits::value_type;
  using allocator_type = Allocator;
  using cancellation_slot_type = state_slot;

  future_handler(future_state<value_type>* s, const Allocator& a) noexcept
    : state_(s), alloc_(a)
  {
  }

  future_handler(future_handler&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)), alloc_(other.alloc_)
  {
  }

  future_handler& operator=(future_handler&&) = delete;

  // Inline: handlers are moved several times on their way through an
  // operation, and each moved-from one is destroyed; only the abandonment
  // path is out of line.
  ~future_handler()
  {
    if (state_) [[unlikely]]
      abandon(state_);
  }

  allocator_type get_allocator() const noexcept { return alloc_; }

  // Per-operation cancellation: future::cancel() emits on this slot.
  cancellation_slot_type get_cancellation_slot() const noexcept
  {
    return state_ ? state_slot(&state_->signal()) : state_slot();
  }

  template <typename... Args>
  void operator()(Args&&... args)
  {
    future_state<value_type>* s = std::exchange(state_, nullptr);
    try
    {
      Traits::deliver(s, std::forward<Args>(args)...);
    }
    catch (...)
    {
      s->set_exception(std::current_exception());
    }
    s->complete(resume_mode::dispatch);
  }

private:
  [[gnu::noinline]] static void abandon(future_state<value_type>* s) noexcept
  {
    s->set_broken();
    try
    {
      s->complete(resume_mode::post);
    }
    catch (...)
    {
      // Scheduling the waiter failed (out of memory); nothing else to do
      // from a destructor.
    }
  }

  future_state<value_type>* state_;
  [[no_unique_address]] Allocator alloc_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_FUTURE_FUTURE_HANDLER_HPP
