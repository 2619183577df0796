// zokio/detail/future/shared_state.hpp: the one-shot state between an
// asynchronous operation and the zokio::future that waits for it.
//
// Protocol. A state has exactly one producer (the completion handler of the
// operation, a combinator, or a spawned coroutine) and one consumer (the
// future, or whatever the future handed itself to). The producer stores the
// outcome, then sets value_bit; the consumer either polls value_bit, blocks
// on the word (get() from a thread outside the context), or attaches one
// continuation (then(), co_await, a combinator), which the producer then runs
// directly from the completion. No mutex, no condition variable.
//
// The state word (32 bits) holds four flags and a reference count:
//   value_bit      the outcome is stored (set once, by the producer)
//   waiter_bit     a continuation is stored (set once, by the consumer)
//   blocked_bit    a thread waits on the word (std::atomic::wait, a futex)
//   cancelled_bit  cancellation was requested (set once)
//   bits 8..31     references: producer, consumer, and anyone briefly holding
//                  the state (a cancellation on its way to the context, the
//                  waker of a blocked thread)
// Each side makes one read-modify-write in the common case:
//   producer  fetch_add(value_bit - ref_one): publishes the outcome and drops
//             its reference; the previous word says whether a continuation
//             is waiting (run it), a thread is blocked (wake it), or the
//             consumer has gone (free the state).
//   consumer  fetch_or(waiter_bit): publishes the continuation; the previous
//             word says whether the outcome was already there (then the
//             consumer schedules the continuation itself, never running it
//             inside the initiating call).
// Both are acq_rel: release publishes what this side wrote before (the
// outcome, the continuation), acquire makes the other side's writes visible
// to whoever acts on the previous word. The reference drop of whoever frees
// the state is acq_rel for the same reason, as in std::shared_ptr.
//
// A blocked thread is woken with notify_all() after the producer's update,
// when the consumer may already have seen value_bit; so before blocking the
// consumer adds a reference on the producer's behalf, which the producer
// drops only after its notify_all() returns. The state is never freed under
// a notify.
//
// Lifetime of the operation: the state never frees the operation; the
// operation holds the producer reference until its completion is reaped,
// so cancelling or dropping the future before then only asks the operation
// to finish early, and its memory is released when it does.
#ifndef ZOKIO_DETAIL_FUTURE_SHARED_STATE_HPP
#define ZOKIO_DETAIL_FUTURE_SHARED_STATE_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/future/state_signal.hpp>
#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/error.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/detail/recycling_allocator.hpp>
#include <boost/asio/detail/thread_info_base.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// What a continuation is asked to do when it runs.
enum class resume_mode
{
  dispatch, // from the producer's completion: may run inline if allowed
  post      // from the consumer's attach, outcome already there: never inline
};

class future_state_base
{
public:
  static constexpr std::uint32_t value_bit = 1;
  static constexpr std::uint32_t waiter_bit = 2;
  static constexpr std::uint32_t blocked_bit = 4;
  static constexpr std::uint32_t cancelled_bit = 8;
  static constexpr std::uint32_t ref_one = 1u << 8;

  // Bytes of continuation kept inside the state: enough for a coroutine's
  // resumption handler (32 bytes; 104 when it also holds outstanding work on
  // an executor of another context) or a callback of a few pointers. Larger
  // ones are allocated with their handler's allocator.
  static constexpr std::size_t continuation_capacity = 112;

  future_state_base(const future_state_base&) = delete;
  future_state_base& operator=(const future_state_base&) = delete;

  // Producer side -----------------------------------------------------------

  void set_error(const boost::system::error_code& ec) noexcept
  {
    ec_ = ec;
    kind_ = outcome::error;
  }

  void set_exception(std::exception_ptr e) noexcept
  {
    ex_ = std::move(e);
    kind_ = outcome::exception;
  }

  // Marks the state as abandoned: no outcome will ever come.
  void set_broken() noexcept
  {
    try
    {
      set_exception(std::make_exception_ptr(std::future_error(std::future_errc::broken_promise)));
    }
    catch (...)
    {
      set_exception(std::current_exception());
    }
  }

  // Publishes the stored outcome and drops the producer's reference. Runs
  // the continuation if one is attached (which may throw what its handler
  // throws, after the state's bookkeeping is complete). mode is post when
  // the caller must not run user code inline (a destructor).
  void complete(resume_mode mode = resume_mode::dispatch)
  {
    const std::uint32_t old = word_.fetch_add(value_bit - ref_one, std::memory_order_acq_rel);
    if (old & waiter_bit)
    {
      continuation_(this, mode);
      return;
    }
    if (old & blocked_bit)
    {
      word_.notify_all();
      release();
      return;
    }
    if ((old >> 8) == 1)
      destroy_(this);
  }

  // Consumer side -----------------------------------------------------------

  bool ready() const noexcept
  {
    return (word_.load(std::memory_order_acquire) & value_bit) != 0;
  }

  bool cancel_requested() const noexcept
  {
    return (word_.load(std::memory_order_relaxed) & cancelled_bit) != 0;
  }

  // Blocks the calling thread until the outcome is stored. Throws
  // system_error(would_deadlock) instead if the calling thread runs the
  // context that would have to produce it.
  void wait()
  {
    std::uint32_t w = word_.load(std::memory_order_acquire);
    if (w & value_bit)
      return;
    if (home_ && home_->can_dispatch())
    {
      throw boost::system::system_error(
          make_error_code(error::would_deadlock), "zokio::future::get");
    }
    // The extra reference is the producer's to drop once it has notified.
    w = word_.fetch_add(blocked_bit + ref_one, std::memory_order_acq_rel);
    if (w & value_bit)
    {
      release(); // the producer has finished and will not notify
      return;
    }
    w += blocked_bit + ref_one;
    while (!(w & value_bit))
    {
      word_.wait(w, std::memory_order_acquire);
      w = word_.load(std::memory_order_acquire);
    }
  }

  // Requests cancellation of whatever produces the outcome, once, and only
  // while it is unfinished. Any thread. The request holds a reference of its
  // own, taken in the same step that checks value_bit (see release()).
  void cancel(boost::asio::cancellation_type_t type) noexcept
  {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    do
    {
      if (w & (value_bit | cancelled_bit))
        return;
    } while (!word_.compare_exchange_weak(w, (w | cancelled_bit) + ref_one,
          std::memory_order_acq_rel, std::memory_order_relaxed));
    cancel_(this, type);
    release();
  }

  // Takes another reference. Only by a holder of a reference.
  void add_ref() noexcept { word_.fetch_add(ref_one, std::memory_order_relaxed); }

  // Drops a reference, freeing the state with the last one.
  //
  // Fast path: a holder that sees itself as the only one frees at once,
  // without a read-modify-write. Nobody can take a reference concurrently:
  // new references come from holders (add_ref), or from cancel() and wait(),
  // whose read-modify-writes check value_bit (a sole remaining holder means
  // the producer has dropped its reference, in the same step that set
  // value_bit) or are the consumer's own. The acquire load synchronizes with
  // every earlier reference drop (all acq_rel).
  void release() noexcept
  {
    if ((word_.load(std::memory_order_acquire) >> 8) == 1
        || (word_.fetch_sub(ref_one, std::memory_order_acq_rel) >> 8) == 1)
      destroy_(this);
  }

  // Publishes the continuation stored with emplace_continuation(). If the
  // outcome is already there, the continuation is run in post mode now.
  void publish_continuation()
  {
    const std::uint32_t old = word_.fetch_or(waiter_bit, std::memory_order_acq_rel);
    if (old & value_bit)
      continuation_(this, resume_mode::post);
  }

  // Outcome (after value_bit has been observed) ------------------------------

  bool has_failed() const noexcept
  {
    return kind_ == outcome::error || kind_ == outcome::exception;
  }

  // Throws the stored failure, if any.
  void rethrow_if_failed() const
  {
    if (kind_ == outcome::error)
      throw boost::system::system_error(ec_);
    if (kind_ == outcome::exception)
      std::rethrow_exception(ex_);
  }

  // The stored failure as an exception, or null.
  std::exception_ptr failure() const noexcept
  {
    if (kind_ == outcome::exception)
      return ex_;
    if (kind_ == outcome::error)
    {
      try
      {
        return std::make_exception_ptr(boost::system::system_error(ec_));
      }
      catch (...)
      {
        return std::current_exception();
      }
    }
    return nullptr;
  }

  // Copies the failure of another state into this one.
  void copy_failure_from(const future_state_base& other) noexcept
  {
    kind_ = other.kind_;
    ec_ = other.ec_;
    ex_ = other.ex_;
  }

  // Where the outcome comes from ---------------------------------------------

  // The scheduler whose threads complete the producer, if known. exact: the
  // producer's pending work is counted by that scheduler (it was started on
  // an executor of it), so a continuation that runs there needs no work of
  // its own to keep the context running.
  void set_home(scheduler* s, bool exact) noexcept
  {
    home_ = s;
    home_exact_ = exact && s != nullptr;
  }

  scheduler* home() const noexcept { return home_; }
  bool home_exact() const noexcept { return home_exact_; }

  // The signal whose slot the producer's handler exposes for per-operation
  // cancellation.
  state_signal& signal() noexcept { return signal_; }

  // Continuation storage -----------------------------------------------------

  // Stores a continuation: a movable object of type Continuation, made from
  // args, with
  //   void run(future_state_base*, resume_mode) &&
  // and an associated allocator (get_allocator()). Made in place inside the
  // state if it fits, else allocated with that allocator (std::allocator
  // meaning the per-thread recycling cache, as for operations).
  template <typename Continuation, typename... Args>
  void emplace_continuation(Args&&... args)
  {
    using cont_type = Continuation;
    if constexpr (sizeof(cont_type) <= continuation_capacity
        && alignof(cont_type) <= alignof(std::max_align_t)
        && std::is_nothrow_move_constructible_v<cont_type>)
    {
      ::new (static_cast<void*>(continuation_storage_)) cont_type(std::forward<Args>(args)...);
      continuation_ = &run_inline_continuation<cont_type>;
    }
    else
    {
      cont_type c(std::forward<Args>(args)...);
      using alloc_type = typename std::allocator_traits<op_allocator_t<
          typename cont_type::allocator_type>>::template rebind_alloc<cont_type>;
      alloc_type alloc(op_allocator<typename cont_type::allocator_type>::get(c.get_allocator()));
      cont_type* p = std::allocator_traits<alloc_type>::allocate(alloc, 1);
      try
      {
        ::new (static_cast<void*>(p)) cont_type(std::move(c));
      }
      catch (...)
      {
        std::allocator_traits<alloc_type>::deallocate(alloc, p, 1);
        throw;
      }
      heap_continuation_ = p;
      continuation_ = &run_heap_continuation<cont_type>;
    }
  }

protected:
  enum class outcome : unsigned char { pending, value, error, exception };

  using destroy_func = void (*)(future_state_base*) noexcept;
  using cancel_func = void (*)(future_state_base*, boost::asio::cancellation_type_t) noexcept;
  using continuation_func = void (*)(future_state_base*, resume_mode);

  future_state_base(destroy_func destroy, cancel_func cancel) noexcept
    : destroy_(destroy), cancel_(cancel)
  {
  }

  ~future_state_base() = default;

  // Emits the signal, from a thread that may: the home context's when there
  // is one (cancellation slots are not thread-safe; Asio operations expect
  // emission from the thread that runs them), else the calling thread.
  static void emit_on_home(future_state_base* s, boost::asio::cancellation_type_t type) noexcept;

  outcome kind_ = outcome::pending;

private:
  template <typename Cont>
  static void run_inline_continuation(future_state_base* s, resume_mode mode)
  {
    auto* stored = std::launder(reinterpret_cast<Cont*>(s->continuation_storage_));
    Cont c(std::move(*stored));
    stored->~Cont();
    std::move(c).run(s, mode);
  }

  template <typename Cont>
  static void run_heap_continuation(future_state_base* s, resume_mode mode)
  {
    using alloc_type = typename std::allocator_traits<op_allocator_t<
        typename Cont::allocator_type>>::template rebind_alloc<Cont>;
    auto* stored = static_cast<Cont*>(s->heap_continuation_);
    s->heap_continuation_ = nullptr;
    alloc_type alloc(op_allocator<typename Cont::allocator_type>::get(stored->get_allocator()));
    Cont c(std::move(*stored));
    stored->~Cont();
    std::allocator_traits<alloc_type>::deallocate(alloc, stored, 1);
    std::move(c).run(s, mode);
  }

  std::atomic<std::uint32_t> word_{2 * ref_one}; // producer + consumer
  bool home_exact_ = false;
  scheduler* home_ = nullptr;
  destroy_func destroy_;
  cancel_func cancel_;
  continuation_func continuation_ = nullptr;
  void* heap_continuation_ = nullptr;
  boost::system::error_code ec_;
  std::exception_ptr ex_;
  state_signal signal_;
  alignas(std::max_align_t) unsigned char continuation_storage_[continuation_capacity];
};

// The state with storage for a T.
template <typename T>
class future_state : public future_state_base
{
public:
  using value_type = T;

  template <typename... Args>
  void set_value(Args&&... args)
  {
    ::new (static_cast<void*>(&value_)) T(std::forward<Args>(args)...);
    kind_ = outcome::value;
  }

  // The value, or the stored failure thrown. Once.
  T take()
  {
    rethrow_if_failed();
    return std::move(value_);
  }

protected:
  future_state(destroy_func destroy, cancel_func cancel) noexcept
    : future_state_base(destroy, cancel)
  {
  }

  ~future_state()
  {
    if (kind_ == outcome::value)
      value_.~T();
  }

private:
  union
  {
    T value_;
  };
};

template <>
class future_state<void> : public future_state_base
{
public:
  using value_type = void;

  void set_value() noexcept { kind_ = outcome::value; }

  void take() { rethrow_if_failed(); }

protected:
  future_state(destroy_func destroy, cancel_func cancel) noexcept
    : future_state_base(destroy, cancel)
  {
  }

  ~future_state() = default;
};

// Memory for states. The token's allocator if it names one; otherwise Asio's
// per-thread recycling cache, in slots of its own (those of the parallel_group
// purpose), so that a state and the operation it waits for, which have
// different sizes, never evict each other from a two-block cache.
using state_purpose = boost::asio::detail::thread_info_base::parallel_group_tag;

template <typename Alloc>
struct state_allocator
{
  using type = Alloc;
  static type get(const Alloc& a) noexcept { return a; }
};

template <typename T>
struct state_allocator<std::allocator<T>>
{
  using type = boost::asio::detail::recycling_allocator<void, state_purpose>;
  static type get(const std::allocator<T>&) noexcept { return type(); }
};

// States that have no allocator of their own (combinators, spawned
// coroutines) come from the same per-thread cache.
template <typename State>
using default_state_allocator = boost::asio::detail::recycling_allocator<State, state_purpose>;

template <typename State, typename... Args>
State* create_state(Args&&... args)
{
  default_state_allocator<State> alloc;
  State* p = alloc.allocate(1);
  try
  {
    return ::new (static_cast<void*>(p)) State(std::forward<Args>(args)...);
  }
  catch (...)
  {
    alloc.deallocate(p, 1);
    throw;
  }
}

template <typename State>
void destroy_state(State* s) noexcept
{
  default_state_allocator<State> alloc;
  s->~State();
  alloc.deallocate(s, 1);
}

// A state allocated with an allocator and produced by a completion handler
// (use_future) or a spawned coroutine: cancellation is the signal's.
template <typename T, typename Alloc>
class op_state final : public future_state<T>
{
public:
  using allocator_type = typename state_allocator<Alloc>::type;

  static op_state* create(const Alloc& a)
  {
    using rebound = typename std::allocator_traits<allocator_type>::template rebind_alloc<op_state>;
    rebound alloc(state_allocator<Alloc>::get(a));
    op_state* p = std::allocator_traits<rebound>::allocate(alloc, 1);
    return ::new (static_cast<void*>(p)) op_state(allocator_type(alloc));
  }

private:
  explicit op_state(const allocator_type& a) noexcept
    : future_state<T>(&do_destroy, &future_state_base::emit_on_home), alloc_(a)
  {
  }

  static void do_destroy(future_state_base* base) noexcept
  {
    auto* self = static_cast<op_state*>(base);
    using rebound = typename std::allocator_traits<allocator_type>::template rebind_alloc<op_state>;
    rebound alloc(self->alloc_);
    self->~op_state();
    std::allocator_traits<rebound>::deallocate(alloc, self, 1);
  }

  [[no_unique_address]] allocator_type alloc_;
};

// Holds one reference to a state.
class state_ref
{
public:
  state_ref() noexcept = default;
  explicit state_ref(future_state_base* s) noexcept : s_(s) {}
  state_ref(state_ref&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  state_ref& operator=(state_ref&& other) noexcept
  {
    if (this != &other)
    {
      if (s_)
        s_->release();
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  ~state_ref()
  {
    if (s_)
      s_->release();
  }
  future_state_base* get() const noexcept { return s_; }

private:
  future_state_base* s_ = nullptr;
};

} // namespace detail
} // namespace zokio

#include <zokio/detail/executor_op.hpp>

namespace zokio {
namespace detail {

inline void future_state_base::emit_on_home(future_state_base* s,
    boost::asio::cancellation_type_t type) noexcept
{
  scheduler* home = s->home_;
  if (home == nullptr || home->can_dispatch())
  {
    s->signal_.emit(type);
    return;
  }
  // Carry the request to the home context, keeping the state alive until it
  // is there (the caller holds a reference); by then the operation may have
  // finished, and the signal is left alone.
  s->add_ref();
  struct carried
  {
    state_ref ref;
    boost::asio::cancellation_type_t type;
    void operator()()
    {
      future_state_base* st = ref.get();
      if (!st->ready())
        st->signal_.emit(type);
    }
  };
  try
  {
    auto* op = executor_op<carried, std::allocator<void>>::create(
        carried{state_ref(s), type}, std::allocator<void>());
    // Immediate class: the request overtakes the context's normal work, so
    // a chain of handlers that keeps the LIFO slot busy (a coroutine posting
    // to itself) cannot delay it until the operation has finished anyway.
    home->post_immediate(op, false, priority_class::immediate);
  }
  catch (...)
  {
    // Out of memory: cancellation is a request; the operation completes.
  }
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_FUTURE_SHARED_STATE_HPP
