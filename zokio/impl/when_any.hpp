// zokio/impl/when_any.hpp: template definitions of zokio/when_any.hpp.
#ifndef ZOKIO_IMPL_WHEN_ANY_HPP
#define ZOKIO_IMPL_WHEN_ANY_HPP

#include <zokio/detail/future/group_state.hpp>

#include <atomic>
#include <cstddef>
#include <limits>

namespace zokio {
namespace detail {

// Policy: the first input to report claims winner_ and cancels the others.
// Result: Derived's finish_with(winner).
template <typename Derived, typename R, typename... T>
class first_of_state : public group_state<Derived, R, T...>
{
  using base = group_state<Derived, R, T...>;

public:
  explicit first_of_state(future<T>&&... inputs) : base(std::move(inputs)...) {}

  void on_input(std::size_t index)
  {
    std::size_t none = no_winner;
    if (winner_.compare_exchange_strong(none, index, std::memory_order_relaxed))
      this->cancel_inputs(index, boost::asio::cancellation_type::terminal);
  }

  void finish()
  {
    // Visible here through the last report's acq_rel decrement.
    static_cast<Derived*>(this)->finish_with(winner_.load(std::memory_order_relaxed));
  }

private:
  static constexpr std::size_t no_winner = std::numeric_limits<std::size_t>::max();
  std::atomic<std::size_t> winner_{no_winner};
};

template <typename... T>
class when_any_state final
  : public first_of_state<when_any_state<T...>, when_any_result<T...>, T...>
{
  using base = first_of_state<when_any_state<T...>, when_any_result<T...>, T...>;

public:
  using base::base;

  void finish_with(std::size_t winner)
  {
    // The result gets a future of its own on the winner's state; the
    // group's stays in place (a cancel() of the group may be reading it on
    // another thread until the group completes).
    when_any_result<T...> r;
    r.index = winner;
    with_index<sizeof...(T)>(winner, [&]<std::size_t I>() {
      auto* s = this->template input_state<I>();
      s->add_ref();
      std::get<I>(r.results) = future_access::adopt(s);
    });
    this->set_value(std::move(r));
  }
};

template <typename... T>
class select_state final
  : public first_of_state<select_state<T...>, select_result<T...>, T...>
{
  using base = first_of_state<select_state<T...>, select_result<T...>, T...>;

public:
  using base::base;

  void finish_with(std::size_t winner)
  {
    future_state_base* s = this->input_state_base(winner);
    if (s->has_failed())
    {
      this->copy_failure_from(*s);
      return;
    }
    try
    {
      with_index<sizeof...(T)>(winner, [&]<std::size_t I>() {
        this->set_value(std::in_place_index<I>, take_unit(this->template input_state<I>()));
      });
    }
    catch (...)
    {
      this->set_exception(std::current_exception());
    }
  }
};

} // namespace detail

template <typename... T>
future<when_any_result<T...>> when_any(future<T>... futures)
{
  static_assert(sizeof...(T) > 0, "when_any needs at least one future");
  auto* s = detail::create_state<detail::when_any_state<T...>>(std::move(futures)...);
  auto f = detail::future_access::adopt<when_any_result<T...>>(s);
  s->start();
  return f;
}

template <typename... T>
future<select_result<T...>> select(future<T>... futures)
{
  static_assert(sizeof...(T) > 0, "select needs at least one future");
  auto* s = detail::create_state<detail::select_state<T...>>(std::move(futures)...);
  auto f = detail::future_access::adopt<select_result<T...>>(s);
  s->start();
  return f;
}

} // namespace zokio

#endif // ZOKIO_IMPL_WHEN_ANY_HPP
