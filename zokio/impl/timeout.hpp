// zokio/impl/timeout.hpp: template definitions of zokio/timeout.hpp.
#ifndef ZOKIO_IMPL_TIMEOUT_HPP
#define ZOKIO_IMPL_TIMEOUT_HPP

#include <zokio/detail/future/continuation.hpp>
#include <zokio/timer/basic_waitable_timer.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/wait_traits.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace zokio {
namespace detail {

// The state of timeout(f, d): f's future and a timer wait on f's context.
//
// The state is produced by f's completion (f's notify_continuation); the
// timer wait holds a reference of its own. The timer object must not outlive
// its context, while the state may (a ready future kept after the context is
// gone), so the timer is destroyed as soon as its wait has finished, by its
// handler, unless a cancellation of the timer is in progress on another
// thread, in which case that canceller destroys it (timer_word_ below).
template <typename T, typename Executor>
class timeout_state final : public future_state<T>
{
public:
  using timer_type = basic_waitable_timer<std::chrono::steady_clock,
      boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

  timeout_state(const Executor& ex, future<T>&& f)
    : future_state<T>(&do_destroy, &do_cancel), input_(std::move(f))
  {
    timer_.emplace(ex);
  }

  // Arms the deadline, then attaches to the input (which may report at
  // once). Called once, with the state's own future already made.
  void start(std::chrono::steady_clock::duration d)
  {
    future_state<T>* in = future_access::state(input_);
    this->set_home(in->home(), in->home_exact());
    timer_->expires_after(d);
    this->add_ref(); // held by the timer's handler
    timer_->async_wait(timer_handler(this));
    in->template emplace_continuation<notify_continuation<timeout_state>>(this, std::size_t(0));
    in->publish_continuation();
  }

  // The input has finished.
  void child_done(std::size_t, resume_mode mode)
  {
    cancel_timer();
    future_state<T>* in = future_access::state(input_);
    if (!in->has_failed())
    {
      try
      {
        if constexpr (std::is_void_v<T>)
        {
          in->take();
          this->set_value();
        }
        else
        {
          this->set_value(in->take());
        }
      }
      catch (...)
      {
        this->set_exception(std::current_exception());
      }
    }
    else if (fired_.load(std::memory_order_acquire))
    {
      this->set_error(boost::asio::error::timed_out);
    }
    else
    {
      this->copy_failure_from(*in);
    }
    this->complete(mode);
  }

private:
  // The timer's completion handler. Runs on the timer's context.
  class timer_handler
  {
  public:
    explicit timer_handler(timeout_state* s) noexcept : s_(s) {}
    timer_handler(timer_handler&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}

    ~timer_handler()
    {
      if (s_)
        s_->timer_finished(false);
    }

    void operator()(const boost::system::error_code& ec)
    {
      std::exchange(s_, nullptr)->timer_finished(!ec);
    }

  private:
    timeout_state* s_;
  };

  void timer_finished(bool expired) noexcept
  {
    if (expired)
    {
      // Ordered before the input's completion by the cancellation request:
      // cancel() changes the input's state word before its producer does.
      fired_.store(true, std::memory_order_release);
      input_.cancel(boost::asio::cancellation_type::terminal);
    }
    const std::uint32_t w = timer_word_.fetch_or(timer_done, std::memory_order_acq_rel);
    if (!(w & cancel_busy))
      timer_.reset();
    this->release();
  }

  // Cancels the timer wait, once, from any thread.
  void cancel_timer() noexcept
  {
    std::uint32_t w = timer_word_.load(std::memory_order_acquire);
    do
    {
      if (w & (timer_done | cancel_requested))
        return;
    } while (!timer_word_.compare_exchange_weak(w, w | cancel_requested | cancel_busy,
          std::memory_order_acq_rel, std::memory_order_acquire));
    try
    {
      timer_->cancel();
    }
    catch (...)
    {
      // The wait then expires normally; the input is reported as it is.
    }
    w = timer_word_.fetch_and(~cancel_busy, std::memory_order_acq_rel);
    if (w & timer_done)
      timer_.reset(); // the handler finished meanwhile and left this to us
  }

  static void do_cancel(future_state_base* base, boost::asio::cancellation_type_t type) noexcept
  {
    auto* self = static_cast<timeout_state*>(base);
    self->input_.cancel(type);
    self->cancel_timer();
  }

  static void do_destroy(future_state_base* base) noexcept
  {
    destroy_state(static_cast<timeout_state*>(base));
  }

  // timer_word_ bits.
  static constexpr std::uint32_t timer_done = 1;       // the handler has run or been destroyed
  static constexpr std::uint32_t cancel_requested = 2; // cancel_timer() has been called
  static constexpr std::uint32_t cancel_busy = 4;      // ... and is still inside timer_->cancel()

  future<T> input_;
  std::optional<timer_type> timer_;
  std::atomic<bool> fired_{false};
  std::atomic<std::uint32_t> timer_word_{0};
};

template <typename Executor, typename T>
future<T> start_timeout(const Executor& ex, future<T> f, std::chrono::steady_clock::duration d)
{
  using state_type = timeout_state<T, Executor>;
  auto* s = create_state<state_type>(ex, std::move(f));
  auto result = future_access::adopt<T>(s);
  s->start(d);
  return result;
}

} // namespace detail

template <typename T, typename Rep, typename Period>
future<T> timeout(future<T> f, std::chrono::duration<Rep, Period> duration)
{
  if (!f.valid() || f.ready())
    return f;
  detail::scheduler* home = detail::future_access::state(f)->home();
  if (home == nullptr)
    if (detail::runner* r = detail::current_runner)
      home = &r->owner();
  if (home == nullptr)
  {
    throw boost::system::system_error(
        make_error_code(error::not_a_zokio_executor), "zokio::timeout");
  }
  return detail::with_context_executor(*home, [&](const auto& ex)
      { return detail::start_timeout(ex, std::move(f),
            std::chrono::ceil<std::chrono::steady_clock::duration>(duration)); });
}

template <typename Executor, typename T, typename Rep, typename Period>
future<T> timeout(const Executor& ex, future<T> f, std::chrono::duration<Rep, Period> duration)
{
  if (!f.valid() || f.ready())
    return f;
  return detail::start_timeout(ex, std::move(f),
      std::chrono::ceil<std::chrono::steady_clock::duration>(duration));
}

} // namespace zokio

#endif // ZOKIO_IMPL_TIMEOUT_HPP
