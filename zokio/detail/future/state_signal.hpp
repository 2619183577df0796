// zokio/detail/future/state_signal.hpp: the per-operation cancellation
// signal of a future's shared state, and the slot its operation sees.
//
// An operation started with zokio::use_future always finds a connected
// cancellation slot (future::cancel() needs one), so most operations install
// a cancellation handler in it, once per operation. With
// boost::asio::cancellation_signal that handler is allocated (from a
// per-thread cache) and freed with the state, and called through a virtual
// function. Here it lives inside the state when it fits, which is the case
// for the handlers of zokio's timers and kernel operations, of Asio's
// reactor and timer operations, and of co_spawn: no allocation, and one
// indirect call.
//
// state_slot models Asio's CancellationSlot (emplace, assign, clear,
// is_connected, has_handler, comparison), which is all that operations
// use: they take the slot type from associated_cancellation_slot and call
// slot.template emplace<Handler>(args...).
//
// Threads: as with Asio's signal, installing, clearing and emitting must not
// run concurrently; the state emits only from the operation's context.
#ifndef ZOKIO_DETAIL_FUTURE_STATE_SIGNAL_HPP
#define ZOKIO_DETAIL_FUTURE_STATE_SIGNAL_HPP

#include <zokio/detail/config.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/detail/thread_info_base.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

class state_signal
{
public:
  // Bytes of handler kept inline. zokio's timer handler is 16 bytes, Asio's
  // reactor operations' about 32, co_spawn's 8 to 64 (with an executor).
  static constexpr std::size_t capacity = 64;

  state_signal() noexcept = default;
  state_signal(const state_signal&) = delete;
  state_signal& operator=(const state_signal&) = delete;

  ~state_signal() { clear(); }

  // Calls the installed handler, if any.
  void emit(boost::asio::cancellation_type_t type)
  {
    if (call_)
      call_(handler(), type);
  }

  bool has_handler() const noexcept { return call_ != nullptr; }

  // Replaces the installed handler with a Handler made from args.
  template <typename Handler, typename... Args>
  Handler& emplace(Args&&... args)
  {
    clear();
    void* mem = storage_;
    if constexpr (!fits<Handler>)
    {
      mem = boost::asio::detail::thread_info_base::allocate(
          boost::asio::detail::thread_info_base::cancellation_signal_tag(),
          boost::asio::detail::thread_context::top_of_thread_call_stack(),
          sizeof(Handler), alignof(Handler));
      heap_ = mem;
      heap_size_ = sizeof(Handler);
    }
    Handler* h;
    try
    {
      h = ::new (mem) Handler(std::forward<Args>(args)...);
    }
    catch (...)
    {
      free_heap();
      throw;
    }
    call_ = [](void* p, boost::asio::cancellation_type_t type) { (*static_cast<Handler*>(p))(type); };
    destroy_ = [](void* p) noexcept { static_cast<Handler*>(p)->~Handler(); };
    return *h;
  }

  // Destroys the installed handler, if any.
  void clear() noexcept
  {
    if (call_)
    {
      destroy_(handler());
      call_ = nullptr;
      free_heap();
    }
  }

private:
  template <typename Handler>
  static constexpr bool fits = sizeof(Handler) <= capacity
    && alignof(Handler) <= alignof(std::max_align_t);

  void* handler() noexcept { return heap_ ? heap_ : static_cast<void*>(storage_); }

  void free_heap() noexcept
  {
    if (heap_)
    {
      boost::asio::detail::thread_info_base::deallocate(
          boost::asio::detail::thread_info_base::cancellation_signal_tag(),
          boost::asio::detail::thread_context::top_of_thread_call_stack(),
          heap_, heap_size_);
      heap_ = nullptr;
    }
  }

  void (*call_)(void*, boost::asio::cancellation_type_t) = nullptr;
  void (*destroy_)(void*) noexcept = nullptr;
  void* heap_ = nullptr;
  std::size_t heap_size_ = 0;
  alignas(std::max_align_t) unsigned char storage_[capacity];
};

// The slot an operation sees (a CancellationSlot, as boost::asio's).
class state_slot
{
public:
  // An unconnected slot.
  state_slot() noexcept = default;

  explicit state_slot(state_signal* s) noexcept : signal_(s) {}

  template <typename CancellationHandler, typename... Args>
  CancellationHandler& emplace(Args&&... args)
  {
    return signal_->template emplace<CancellationHandler>(std::forward<Args>(args)...);
  }

  template <typename CancellationHandler>
  std::decay_t<CancellationHandler>& assign(CancellationHandler&& handler)
  {
    return signal_->template emplace<std::decay_t<CancellationHandler>>(
        std::forward<CancellationHandler>(handler));
  }

  void clear() noexcept
  {
    if (signal_)
      signal_->clear();
  }

  bool is_connected() const noexcept { return signal_ != nullptr; }

  bool has_handler() const noexcept { return signal_ != nullptr && signal_->has_handler(); }

  friend bool operator==(const state_slot& a, const state_slot& b) noexcept
  {
    return a.signal_ == b.signal_;
  }

  friend bool operator!=(const state_slot& a, const state_slot& b) noexcept
  {
    return a.signal_ != b.signal_;
  }

private:
  state_signal* signal_ = nullptr;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_FUTURE_STATE_SIGNAL_HPP
