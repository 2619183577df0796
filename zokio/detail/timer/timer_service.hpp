// zokio/detail/timer/timer_service.hpp: the implementation behind
// zokio::basic_waitable_timer, one service per clock type and context.
#ifndef ZOKIO_DETAIL_TIMER_TIMER_SERVICE_HPP
#define ZOKIO_DETAIL_TIMER_TIMER_SERVICE_HPP

#include <zokio/detail/handler_work.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/timer/timer_queue.hpp>
#include <zokio/detail/timer/wait_handler.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>

#include <chrono>
#include <mutex>
#include <thread>

namespace zokio {
namespace detail {

template <typename Clock, typename WaitTraits>
class timer_service
  : public boost::asio::detail::execution_context_service_base<timer_service<Clock, WaitTraits>>
{
public:
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  // State of one timer object.
  struct implementation_type
  {
    time_point expiry{};
    bool might_have_pending_waits = false;
    per_timer_data timer_data;
  };

  explicit timer_service(boost::asio::execution_context& ctx)
    : boost::asio::detail::execution_context_service_base<timer_service>(ctx),
      scheduler_(boost::asio::use_service<scheduler>(ctx))
  {
    scheduler_.add_timer_queue(queue_);
  }

  ~timer_service() { scheduler_.remove_timer_queue(queue_); }

  // Pending waits are destroyed without being invoked (context shutdown).
  void shutdown() override
  {
    op_queue ops;
    {
      std::lock_guard<std::mutex> lock(queue_.mutex());
      queue_.take_all(ops);
    }
  }

  scheduler& owner() noexcept { return scheduler_; }

  void construct(implementation_type& impl) noexcept
  {
    impl.expiry = time_point();
    impl.might_have_pending_waits = false;
  }

  void destroy(implementation_type& impl) noexcept
  {
    cancel(impl);
    std::lock_guard<std::mutex> lock(queue_.mutex());
    queue_.release(impl.timer_data);
  }

  void move_construct(implementation_type& impl, implementation_type& other) noexcept
  {
    std::lock_guard<std::mutex> lock(queue_.mutex());
    impl.expiry = other.expiry;
    impl.might_have_pending_waits = other.might_have_pending_waits;
    other.might_have_pending_waits = false;
    queue_.move_timer(impl.timer_data, other.timer_data);
  }

  // Cancels every pending wait of impl: each completes with
  // operation_aborted. Returns how many. Any thread.
  std::size_t cancel(implementation_type& impl, std::size_t max = static_cast<std::size_t>(-1)) noexcept
  {
    if (!impl.might_have_pending_waits)
      return 0;
    op_queue ops;
    std::size_t n;
    {
      std::lock_guard<std::mutex> lock(queue_.mutex());
      n = queue_.cancel_timer(impl.timer_data, ops, max);
      impl.might_have_pending_waits = queue_.has_waits(impl.timer_data);
    }
    scheduler_.post_deferred(ops);
    return n;
  }

  // Cancels the wait that installed key in its cancellation slot. Any thread.
  void cancel_by_key(per_timer_data& data, void* key) noexcept
  {
    op_queue ops;
    {
      std::lock_guard<std::mutex> lock(queue_.mutex());
      queue_.cancel_by_key(data, key, ops);
    }
    scheduler_.post_deferred(ops);
  }

  std::size_t expires_at(implementation_type& impl, const time_point& expiry)
  {
    std::size_t n = cancel(impl);
    impl.expiry = expiry;
    return n;
  }

  std::size_t expires_after(implementation_type& impl, const duration& d)
  {
    return expires_at(impl, add(Clock::now(), d));
  }

  // Blocks the calling thread until the expiry has passed.
  void wait(implementation_type& impl, boost::system::error_code& ec)
  {
    time_point now = Clock::now();
    while (now < impl.expiry)
    {
      std::this_thread::sleep_for(WaitTraits::to_wait_duration(impl.expiry - now));
      now = Clock::now();
    }
    ec = boost::system::error_code();
  }

  template <typename Handler, typename IoExecutor>
  void async_wait(implementation_type& impl, Handler&& handler, const IoExecutor& io_ex)
  {
    using handler_type = std::decay_t<Handler>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);

    auto* op = bound_handler<handler_type, IoExecutor>::template create_from<
        wait_handler<handler_type, IoExecutor>>(std::forward<Handler>(handler), io_ex, scheduler_);

    // Per-operation cancellation: any of terminal, partial and total cancel
    // a wait (a wait has no side effect to undo).
    if (slot.is_connected())
      op->cancellation_key_ = &slot.template emplace<op_cancellation>(this, &impl.timer_data);

    impl.might_have_pending_waits = true;
    scheduler_.work_started();

    bool earliest = false;
    bool due_now = false;
    runner* here = scheduler_.this_thread_runner();
    {
      std::lock_guard<std::mutex> lock(queue_.mutex());
      // On a thread that runs the context, a wait that is already due and
      // would come first anyway skips the heap (zero-length waits used to
      // yield cost no heap work).
      if (here && queue_.is_before_all(impl.expiry) && !(Clock::now() < impl.expiry))
      {
        op->ec_ = boost::system::error_code();
        due_now = true;
      }
      else
      {
        earliest = queue_.enqueue(impl.expiry, impl.timer_data, op);
      }
    }
    if (due_now)
    {
      // Completed through the ready queue, never inside this function.
      here->note_timers_fired(1);
      scheduler_.post_deferred(op);
      return;
    }
    if (earliest)
      scheduler_.timer_queue_changed();
  }

private:
  // Installed in a handler's cancellation slot; identifies its wait.
  class op_cancellation
  {
  public:
    op_cancellation(timer_service* service, per_timer_data* data) noexcept
      : service_(service), data_(data)
    {
    }

    void operator()(boost::asio::cancellation_type_t type)
    {
      using boost::asio::cancellation_type;
      if (!!(type & (cancellation_type::terminal | cancellation_type::partial
              | cancellation_type::total)))
        service_->cancel_by_key(*data_, this);
    }

  private:
    timer_service* service_;
    per_timer_data* data_;
  };

  // t + d, saturating at the clock's limits (as Asio's wait traits do).
  static time_point add(const time_point& t, const duration& d)
  {
    if (t.time_since_epoch() >= duration::zero())
    {
      if (d > (time_point::max)() - t)
        return (time_point::max)();
    }
    else if (d < (time_point::min)() - t)
    {
      return (time_point::min)();
    }
    return t + d;
  }

  scheduler& scheduler_;
  timer_queue<Clock, WaitTraits> queue_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_TIMER_SERVICE_HPP
