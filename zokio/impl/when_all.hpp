// zokio/impl/when_all.hpp: template definitions of zokio/when_all.hpp.
#ifndef ZOKIO_IMPL_WHEN_ALL_HPP
#define ZOKIO_IMPL_WHEN_ALL_HPP

#include <zokio/detail/future/group_state.hpp>

#include <atomic>
#include <cstddef>
#include <limits>

namespace zokio {
namespace detail {

// Policy: the first input to fail claims first_failed_ and cancels the
// others; the group's outcome is that failure, or every value.
template <typename... T>
class when_all_state final
  : public group_state<when_all_state<T...>, when_all_result<T...>, T...>
{
  using base = group_state<when_all_state<T...>, when_all_result<T...>, T...>;
  friend base;

public:
  explicit when_all_state(future<T>&&... inputs) : base(std::move(inputs)...) {}

  void on_input(std::size_t index)
  {
    if (!this->input_state_base(index)->has_failed())
      return;
    std::size_t none = no_failure;
    if (first_failed_.compare_exchange_strong(none, index, std::memory_order_relaxed))
      this->cancel_inputs(index, boost::asio::cancellation_type::terminal);
  }

  void finish()
  {
    // The last report's acq_rel decrement made every input's outcome and
    // first_failed_ visible here.
    const std::size_t failed = first_failed_.load(std::memory_order_relaxed);
    if (failed != no_failure)
    {
      this->copy_failure_from(*this->input_state_base(failed));
      return;
    }
    try
    {
      [this]<std::size_t... I>(std::index_sequence<I...>) {
        this->set_value(take_unit(this->template input_state<I>())...);
      }(std::make_index_sequence<sizeof...(T)>());
    }
    catch (...)
    {
      this->set_exception(std::current_exception());
    }
  }

private:
  static constexpr std::size_t no_failure = std::numeric_limits<std::size_t>::max();
  std::atomic<std::size_t> first_failed_{no_failure};
};

} // namespace detail

template <typename... T>
future<when_all_result<T...>> when_all(future<T>... futures)
{
  auto* s = detail::create_state<detail::when_all_state<T...>>(std::move(futures)...);
  auto f = detail::future_access::adopt<when_all_result<T...>>(s);
  s->start();
  return f;
}

} // namespace zokio

#endif // ZOKIO_IMPL_WHEN_ALL_HPP
