// zokio/detail/future/group_state.hpp: the state of a combinator that waits
// for several futures (when_all, when_any, select).
//
// The group owns its input futures (the consumers of their states) and
// attaches to each a notify_continuation, which runs inline on the thread
// that completes that input. The group is the producer of its own state: it
// holds the producer reference until the last input has reported, and then
// completes, from that input's completion (so a coroutine awaiting a
// when_all on one context is resumed directly by the last kernel completion).
//
// Threads: inputs may complete concurrently on different threads. Each
// report only reads its own input's state, then decrements remaining_
// (acq_rel), so whoever makes it zero sees every input's outcome. The policy
// (Derived::on_input) may claim a "first" slot with a compare-exchange and
// cancel the other inputs; cancel() is safe on any thread, and the group
// keeps every input's state alive until the group itself is destroyed.
#ifndef ZOKIO_DETAIL_FUTURE_GROUP_STATE_HPP
#define ZOKIO_DETAIL_FUTURE_GROUP_STATE_HPP

#include <zokio/detail/future/continuation.hpp>
#include <zokio/detail/future/shared_state.hpp>

#include <atomic>
#include <cstddef>
#include <future>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace zokio {

template <typename T>
class future;

namespace detail {

// The value a void input contributes to a combined result.
template <typename T>
using unit_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Calls f.template operator()<I>() for the run-time index i < N.
template <std::size_t N, typename F>
void with_index(std::size_t i, F&& f)
{
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((i == I ? (f.template operator()<I>(), 0) : 0), ...);
  }(std::make_index_sequence<N>());
}

// Moves the value of a finished input's state into a combined result.
template <typename T>
unit_t<T> take_unit(future_state<T>* s)
{
  if constexpr (std::is_void_v<T>)
  {
    s->take();
    return std::monostate();
  }
  else
  {
    return s->take();
  }
}

template <typename Derived, typename R, typename... T>
class group_state : public future_state<R>
{
public:
  static constexpr std::size_t size = sizeof...(T);

  // Attaches to every input. Must be called once, after construction, with
  // the group's own future already made (an input that is already finished
  // reports at once, and the last report completes the group).
  void start()
  {
    set_group_home();
    if constexpr (size == 0)
    {
      derived().finish();
      this->complete(resume_mode::post);
    }
    else
    {
      [this]<std::size_t... I>(std::index_sequence<I...>) {
        (attach_input<I>(), ...);
      }(std::make_index_sequence<size>());
    }
  }

  // An input has finished (called by its notify_continuation).
  void child_done(std::size_t index, resume_mode mode)
  {
    derived().on_input(index);
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1)
    {
      derived().finish();
      this->complete(mode);
    }
  }

protected:
  explicit group_state(future<T>&&... inputs)
    : future_state<R>(&do_destroy, &do_cancel), inputs_(std::move(inputs)...)
  {
  }

  template <std::size_t I>
  auto* input_state() noexcept
  {
    return future_access::state(std::get<I>(inputs_));
  }

  // The state of an input, as the base type, by run-time index.
  future_state_base* input_state_base(std::size_t index) noexcept
  {
    future_state_base* s = nullptr;
    with_index<size>(index, [&]<std::size_t I>() { s = input_state<I>(); });
    return s;
  }

  // Requests cancellation of every input except one (size for none).
  void cancel_inputs(std::size_t except, boost::asio::cancellation_type_t type) noexcept
  {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I != except ? std::get<I>(inputs_).cancel(type) : void()), ...);
    }(std::make_index_sequence<size>());
  }

  std::tuple<future<T>...> inputs_;

private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  template <std::size_t I>
  void attach_input()
  {
    future<std::tuple_element_t<I, std::tuple<T...>>>& f = std::get<I>(inputs_);
    if (!f.valid())
    {
      f = make_failed_future<std::tuple_element_t<I, std::tuple<T...>>>(
          std::make_exception_ptr(std::future_error(std::future_errc::no_state)));
    }
    auto* s = future_access::state(f);
    s->template emplace_continuation<notify_continuation<Derived>>(&derived(), I);
    s->publish_continuation();
  }

  // The group completes from its inputs' completions: its home is theirs
  // when they share one, and exact only if every input's is.
  void set_group_home() noexcept
  {
    scheduler* home = nullptr;
    bool exact = true;
    bool same = true;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ([&] {
        auto* s = future_access::state(std::get<I>(inputs_));
        if (s == nullptr)
          return;
        if (home == nullptr)
          home = s->home();
        else if (s->home() != nullptr && s->home() != home)
          same = false;
        exact = exact && s->home_exact();
      }(), ...);
    }(std::make_index_sequence<size>());
    this->set_home(home, exact && same);
  }

  static void do_cancel(future_state_base* base, boost::asio::cancellation_type_t type) noexcept
  {
    static_cast<Derived*>(base)->cancel_inputs(size, type);
  }

  static void do_destroy(future_state_base* base) noexcept
  {
    destroy_state(static_cast<Derived*>(base));
  }

  std::atomic<std::size_t> remaining_{size};
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_FUTURE_GROUP_STATE_HPP
