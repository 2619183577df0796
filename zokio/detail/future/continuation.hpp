// zokio/detail/future/continuation.hpp: what runs when a future's outcome
// arrives: a completion handler given to then() or co_await, or the
// notification of a combinator.
//
// Where a handler runs (as an Asio operation's handler would):
//   - on its associated executor, which defaults to the executor of the
//     context that produces the outcome (the "home"); when that is not known,
//     to that of the context the attaching thread runs, if any; else to the
//     system executor;
//   - inline, from the producer's completion, when that executor is a zokio
//     executor whose context the completing thread runs (a kernel completion
//     resumes the awaiting coroutine directly, with no queueing), or is the
//     system executor;
//   - otherwise through the executor (dispatch from a completion, post when
//     the outcome was already there at attach time: a handler is never
//     invoked inside then() or the co_await that attaches it).
// Outstanding work: while it waits, the handler keeps its executor's context
// running (outstanding_work.tracked), unless that context is the home and
// already counts the producer's pending work.
// Cancellation: if the handler has a connected cancellation slot, a forwarder
// installed in it turns an emitted cancellation into future::cancel(); it is
// removed just before the handler is invoked, on the handler's executor.
#ifndef ZOKIO_DETAIL_FUTURE_CONTINUATION_HPP
#define ZOKIO_DETAIL_FUTURE_CONTINUATION_HPP

#include <zokio/detail/future/shared_state.hpp>
#include <zokio/detail/handler_work.hpp>
#include <zokio/io_context.hpp>
#include <zokio/thread_pool.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/system_executor.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace zokio {

template <typename T>
class future;

template <typename T>
class join_handle;

namespace detail {

// Private access to future<T> for the future layer.
struct future_access
{
  template <typename T>
  static future<T> adopt(future_state<T>* s) noexcept
  {
    return future<T>(s);
  }

  template <typename T>
  static future_state<T>* release(future<T>& f) noexcept
  {
    return std::exchange(f.state_, nullptr);
  }

  template <typename T>
  static future_state<T>* state(const future<T>& f) noexcept
  {
    return f.state_;
  }

  // The outcome of a future handed to its continuation, consuming it: get()
  // without the checks and the wait. The outcome is visible: the
  // continuation runs on the producer's thread after it stored the outcome,
  // or after an acquire of value_bit (publish_continuation), or handed over
  // through an executor, which synchronizes.
  template <typename T>
  static T take_ready(future<T>& f)
  {
    state_ref ref(std::exchange(f.state_, nullptr));
    return static_cast<future_state<T>*>(ref.get())->take();
  }

  template <typename T>
  static join_handle<T> make_join_handle(future<T>&& f) noexcept
  {
    return join_handle<T>(std::move(f));
  }
};

// The signature a future hands to then().
template <typename T>
struct then_signature
{
  using type = void(std::exception_ptr, T);
};

template <>
struct then_signature<void>
{
  using type = void(std::exception_ptr);
};

// How the handler is called.
struct then_shape {};   // handler(std::exception_ptr[, T])
struct future_shape {}; // handler(zokio::future<T>), ready

// Installed in a waiting handler's cancellation slot.
class forward_cancellation
{
public:
  explicit forward_cancellation(future_state_base* s) noexcept : s_(s) {}

  void operator()(boost::asio::cancellation_type_t type) noexcept { s_->cancel(type); }

private:
  future_state_base* s_;
};

// Calls f with the default executor of the context behind s: a
// zokio::io_context or a zokio::thread_pool, the two kinds of context whose
// constructors create a scheduler as of this version.
template <typename F>
decltype(auto) with_context_executor(scheduler& s, F&& f)
{
  if (s.kind() == scheduler::context_kind::thread_pool)
    return std::forward<F>(f)(static_cast<thread_pool&>(s.context()).get_executor());
  return std::forward<F>(f)(static_cast<io_context&>(s.context()).get_executor());
}

template <typename Executor>
inline constexpr bool is_system_executor_v =
    std::is_same_v<std::decay_t<Executor>, boost::asio::system_executor>;

// The scheduler behind the executor a handler runs on, if it is a zokio
// executor. Reads the executor of a coroutine's resumption handler in place
// (copying an any_io_executor costs more than the rest of the check).
template <typename Handler, typename DefaultExecutor>
scheduler* target_scheduler(Handler& h, const DefaultExecutor& dex) noexcept
{
  if constexpr (requires { h.zokio_executor_ref(); })
    return scheduler_of(h.zokio_executor_ref());
  else if constexpr (is_system_executor_v<
      boost::asio::associated_executor_t<Handler, DefaultExecutor>>)
    return nullptr;
  else
    return scheduler_of(boost::asio::get_associated_executor(h, dex));
}

// A handler waiting for a state. Tracked: it also holds outstanding work on
// its executor (kept out of the untracked form, which is small enough to
// stay inside the state).
template <typename Handler, typename T, typename Shape, typename DefaultExecutor,
    bool Tracked>
class handler_continuation
{
public:
  using executor_type = boost::asio::associated_executor_t<Handler, DefaultExecutor>;
  using allocator_type = boost::asio::associated_allocator_t<Handler>;

  handler_continuation(Handler&& h, const DefaultExecutor& dex, scheduler* target,
      bool forwarding)
    : handler_(std::move(h)), target_(target), forwarding_(forwarding), default_ex_(dex)
  {
    if constexpr (Tracked)
    {
      if (target_ != nullptr)
        work_.start(*target_);
      else if constexpr (!zokio_executor<executor_type>) // else target_ is set
        work_.start(boost::asio::get_associated_executor(handler_, default_executor()));
    }
  }

  handler_continuation(handler_continuation&&) = default;

  allocator_type get_allocator() const noexcept
  {
    return boost::asio::get_associated_allocator(handler_);
  }

  void run(future_state_base* base, resume_mode mode) &&
  {
    auto* s = static_cast<future_state<T>*>(base);
    if (mode == resume_mode::dispatch && may_run_inline())
    {
      invoke(std::move(handler_), forwarding_, s);
      return;
    }
    executor_type ex = boost::asio::get_associated_executor(handler_, default_executor());
    allocator_type alloc = get_allocator();
    bound_handler fn(std::move(handler_), s, forwarding_, std::move(work_));
    if (mode == resume_mode::dispatch)
      boost::asio::dispatch(ex, boost::asio::bind_allocator(alloc, std::move(fn)));
    else
      boost::asio::post(ex, boost::asio::bind_allocator(alloc, std::move(fn)));
  }

private:
  // Takes the outcome out of the state (releasing it, so its memory can be
  // reused by whatever the handler starts) and calls the handler.
  static void invoke(Handler&& h, bool forwarding, future_state<T>* s)
  {
    if (forwarding)
      boost::asio::get_associated_cancellation_slot(h).clear();
    if constexpr (std::is_same_v<Shape, future_shape>)
    {
      std::move(h)(future_access::adopt(s));
    }
    else if constexpr (std::is_void_v<T>)
    {
      std::exception_ptr e;
      {
        state_ref ref(s);
        e = s->failure();
      }
      std::move(h)(std::move(e));
    }
    else
    {
      std::exception_ptr e;
      std::optional<T> v;
      {
        state_ref ref(s);
        e = s->failure();
        if (!e)
          v.emplace(s->take());
      }
      if (e)
        std::move(h)(std::move(e), T());
      else
        std::move(h)(std::exception_ptr(), std::move(*v));
    }
  }

  static auto track(const executor_type& ex)
  {
    if constexpr (boost::asio::execution::is_executor<executor_type>::value)
      return boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
    else
      return boost::asio::make_work_guard(ex);
  }

  // Outstanding work on the handler's executor: counted directly by the
  // scheduler for a zokio executor, through the executor's
  // outstanding_work.tracked property (or a work guard) for any other.
  class tracked_work
  {
  public:
    tracked_work() noexcept = default;

    tracked_work(tracked_work&& other) noexcept
      : sched_(std::exchange(other.sched_, nullptr)), executor_(std::move(other.executor_))
    {
      other.executor_.reset();
    }

    ~tracked_work()
    {
      if (sched_)
        sched_->work_finished();
    }

    void start(scheduler& s) noexcept
    {
      s.work_started();
      sched_ = &s;
    }

    void start(const executor_type& ex) { executor_.emplace(track(ex)); }

  private:
    struct no_executor_work
    {
      void reset() noexcept {}
    };
    using executor_work = std::conditional_t<zokio_executor<executor_type>, no_executor_work,
        std::optional<decltype(track(std::declval<const executor_type&>()))>>;

    scheduler* sched_ = nullptr;
    [[no_unique_address]] executor_work executor_;
  };

  struct no_work
  {
  };
  using work_storage = std::conditional_t<Tracked, tracked_work, no_work>;

  // The handler bound to the state, to go through its executor. It carries
  // the outstanding work too, so that the work ends on the executor's own
  // thread, after the handler (ending it here, on the producer's thread,
  // could let that context's run() return and the context be destroyed
  // while this thread still signals it). Destroyed without being called
  // (its executor shut down), it releases the state.
  class bound_handler
  {
  public:
    bound_handler(Handler&& h, future_state<T>* s, bool forwarding, work_storage&& work) noexcept
      : h_(std::move(h)), s_(s), forwarding_(forwarding), work_(std::move(work))
    {
    }

    bound_handler(bound_handler&& other) noexcept
      : h_(std::move(other.h_)), s_(std::exchange(other.s_, nullptr)),
        forwarding_(other.forwarding_), work_(std::move(other.work_))
    {
    }

    ~bound_handler()
    {
      if (s_)
        s_->release();
    }

    void operator()()
    {
      work_storage work(std::move(work_));
      invoke(std::move(h_), forwarding_, std::exchange(s_, nullptr));
    }

  private:
    Handler h_;
    future_state<T>* s_;
    bool forwarding_;
    [[no_unique_address]] work_storage work_;
  };

  // True if the handler may run now, on the calling thread: its executor is
  // the system executor, or a zokio executor whose context this thread runs.
  bool may_run_inline() const noexcept
  {
    if constexpr (is_system_executor_v<executor_type>)
      return true;
    else
      return target_ != nullptr
        && (target_->this_thread_runner() != nullptr || target_->can_dispatch());
  }

  // The executor the handler runs on if it names none (not stored when it
  // is the stateless system executor).
  struct no_default_executor
  {
    explicit no_default_executor(const DefaultExecutor&) noexcept {}
  };
  using default_executor_storage = std::conditional_t<is_system_executor_v<DefaultExecutor>,
      no_default_executor, DefaultExecutor>;

  DefaultExecutor default_executor() const noexcept
  {
    if constexpr (is_system_executor_v<DefaultExecutor>)
      return DefaultExecutor();
    else
      return default_ex_;
  }

  Handler handler_;
  scheduler* target_; // the scheduler of the handler's executor, if zokio
  bool forwarding_;   // a forward_cancellation sits in the handler's slot
  [[no_unique_address]] default_executor_storage default_ex_;
  [[no_unique_address]] work_storage work_;
};

template <typename Shape, typename T, typename Handler, typename DefaultExecutor>
void store_handler(future_state<T>* s, Handler&& h, const DefaultExecutor& dex, bool forwarding)
{
  using handler_type = std::decay_t<Handler>;
  using executor_type = boost::asio::associated_executor_t<handler_type, DefaultExecutor>;
  scheduler* target = target_scheduler(h, dex);
  // No work of its own is needed when the handler runs inline anywhere, or
  // on the home context, which already counts the producer's pending work.
  const bool tracked = !is_system_executor_v<executor_type>
    && !(target != nullptr && target == s->home() && s->home_exact());
  if (tracked)
  {
    s->template emplace_continuation<
        handler_continuation<handler_type, T, Shape, DefaultExecutor, true>>(
          std::forward<Handler>(h), dex, target, forwarding);
  }
  else
  {
    s->template emplace_continuation<
        handler_continuation<handler_type, T, Shape, DefaultExecutor, false>>(
          std::forward<Handler>(h), dex, target, forwarding);
  }
}

// Attaches handler to s (the consumer's reference passes to it).
template <typename Shape, typename T, typename Handler>
void attach_handler(future_state<T>* s, Handler&& handler)
{
  using handler_type = std::decay_t<Handler>;
  if constexpr (std::is_lvalue_reference_v<Handler>)
  {
    handler_type copy(handler);
    return attach_handler<Shape>(s, std::move(copy));
  }
  handler_type& h = handler; // moved from once, into the continuation

  bool forwarding = false;
  auto slot = boost::asio::get_associated_cancellation_slot(h);
  if (slot.is_connected())
  {
    slot.template emplace<forward_cancellation>(s);
    forwarding = true;
  }

  try
  {
    using own_executor = boost::asio::associated_executor_t<handler_type, boost::asio::system_executor>;
    scheduler* home = nullptr;
    if constexpr (is_system_executor_v<own_executor>)
    {
      home = s->home();
      if (home == nullptr)
        if (runner* r = current_runner)
          home = &r->owner();
    }
    if (home)
    {
      with_context_executor(*home, [&](const auto& ex)
          { store_handler<Shape>(s, std::move(h), ex, forwarding); });
    }
    else
    {
      store_handler<Shape>(s, std::move(h), boost::asio::system_executor(), forwarding);
    }
  }
  catch (...)
  {
    if (forwarding)
      slot.clear();
    s->cancel(boost::asio::cancellation_type::terminal);
    s->release();
    throw;
  }
  s->publish_continuation();
}

// Notifies a combinator that one of its inputs has finished. Runs inline on
// the thread that completed the input.
template <typename Parent>
class notify_continuation
{
public:
  using allocator_type = std::allocator<void>;

  notify_continuation(Parent* parent, std::size_t index) noexcept
    : parent_(parent), index_(index)
  {
  }

  allocator_type get_allocator() const noexcept { return allocator_type(); }

  void run(future_state_base*, resume_mode mode) && { parent_->child_done(index_, mode); }

private:
  Parent* parent_;
  std::size_t index_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_FUTURE_CONTINUATION_HPP
