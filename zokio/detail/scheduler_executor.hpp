// zokio/detail/scheduler_executor.hpp: the executor of every zokio context
// (io_context::basic_executor_type and thread_pool::basic_executor_type).
#ifndef ZOKIO_DETAIL_SCHEDULER_EXECUTOR_HPP
#define ZOKIO_DETAIL_SCHEDULER_EXECUTOR_HPP

#include <zokio/detail/config.hpp>
#include <zokio/detail/executor_op.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/priority.hpp>

#include <boost/asio/execution.hpp>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// Executor that submits to Context's scheduler (Context::impl()).
//
// Satisfies the standard executor concept (execute, query, require, prefer)
// and the Networking TS executor requirements (context, on_work_started,
// on_work_finished, dispatch, post, defer). Default properties match
// boost::asio::io_context's executor: blocking.possibly, relationship.fork,
// outstanding_work.untracked, mapping.thread, allocator std::allocator<void>;
// plus zokio's scheduling class, priority::normal.
//
// Size: one pointer (plus the allocator, empty by default). Run-time
// properties live in the low bits of the context pointer (contexts are
// 16-byte aligned); outstanding_work.tracked is the compile-time Bits.
template <typename Context, typename Allocator, std::uintptr_t Bits>
class scheduler_executor : Allocator
{
  enum : std::uintptr_t
  {
    blocking_never = 1,
    relationship_continuation = 2,
    priority_shift = 2,
    priority_mask = 12, // priority_class, 2 bits
    runtime_bits = 15,
    outstanding_work_tracked = 16,
  };
  static_assert(alignof(Context) >= 16, "the context keeps property bits in its address");

public:
  scheduler_executor(const scheduler_executor& other) noexcept
    : Allocator(static_cast<const Allocator&>(other)), target_(other.target_)
  {
    if (Bits & outstanding_work_tracked)
      if (context_ptr())
        scheduler_ptr()->work_started();
  }

  scheduler_executor(scheduler_executor&& other) noexcept
    : Allocator(static_cast<Allocator&&>(other)), target_(other.target_)
  {
    if (Bits & outstanding_work_tracked)
      other.target_ = 0;
  }

  ~scheduler_executor() noexcept
  {
    if (Bits & outstanding_work_tracked)
      if (context_ptr())
        scheduler_ptr()->work_finished();
  }

  scheduler_executor& operator=(const scheduler_executor& other) noexcept
  {
    if (this != &other)
    {
      Context* old = context_ptr();
      static_cast<Allocator&>(*this) = static_cast<const Allocator&>(other);
      target_ = other.target_;
      if (Bits & outstanding_work_tracked)
      {
        if (context_ptr())
          scheduler_ptr()->work_started();
        if (old)
          old->impl().work_finished();
      }
    }
    return *this;
  }

  scheduler_executor& operator=(scheduler_executor&& other) noexcept
  {
    if (this != &other)
    {
      Context* old = context_ptr();
      static_cast<Allocator&>(*this) = static_cast<Allocator&&>(other);
      target_ = other.target_;
      if (Bits & outstanding_work_tracked)
      {
        other.target_ = 0;
        if (old)
          old->impl().work_finished();
      }
    }
    return *this;
  }

  // Properties (boost::asio::require / prefer / query).

  constexpr scheduler_executor require(boost::asio::execution::blocking_t::possibly_t) const
  {
    return scheduler_executor(context_ptr(), *this, bits() & ~blocking_never);
  }

  constexpr scheduler_executor require(boost::asio::execution::blocking_t::never_t) const
  {
    return scheduler_executor(context_ptr(), *this, bits() | blocking_never);
  }

  constexpr scheduler_executor require(boost::asio::execution::relationship_t::fork_t) const
  {
    return scheduler_executor(context_ptr(), *this, bits() & ~relationship_continuation);
  }

  constexpr scheduler_executor require(boost::asio::execution::relationship_t::continuation_t) const
  {
    return scheduler_executor(context_ptr(), *this, bits() | relationship_continuation);
  }

  constexpr scheduler_executor<Context, Allocator, Bits | outstanding_work_tracked>
  require(boost::asio::execution::outstanding_work_t::tracked_t) const
  {
    return scheduler_executor<Context, Allocator, Bits | outstanding_work_tracked>(
        context_ptr(), *this, bits());
  }

  constexpr scheduler_executor<Context, Allocator, Bits & ~outstanding_work_tracked>
  require(boost::asio::execution::outstanding_work_t::untracked_t) const
  {
    return scheduler_executor<Context, Allocator, Bits & ~outstanding_work_tracked>(
        context_ptr(), *this, bits());
  }

  template <typename OtherAllocator>
  constexpr scheduler_executor<Context, OtherAllocator, Bits>
  require(boost::asio::execution::allocator_t<OtherAllocator> a) const
  {
    return scheduler_executor<Context, OtherAllocator, Bits>(context_ptr(), a.value(), bits());
  }

  constexpr scheduler_executor<Context, std::allocator<void>, Bits>
  require(boost::asio::execution::allocator_t<void>) const
  {
    return scheduler_executor<Context, std::allocator<void>, Bits>(
        context_ptr(), std::allocator<void>(), bits());
  }

  constexpr scheduler_executor require(zokio::priority::immediate_t) const
  {
    return with_priority(priority_class::immediate);
  }

  constexpr scheduler_executor require(zokio::priority::normal_t) const
  {
    return with_priority(priority_class::normal);
  }

  constexpr scheduler_executor require(zokio::priority::background_t) const
  {
    return with_priority(priority_class::background);
  }

  static constexpr boost::asio::execution::mapping_t query(
      boost::asio::execution::mapping_t) noexcept
  {
    return boost::asio::execution::mapping.thread;
  }

  Context& query(boost::asio::execution::context_t) const noexcept { return *context_ptr(); }

  constexpr boost::asio::execution::blocking_t query(
      boost::asio::execution::blocking_t) const noexcept
  {
    return (bits() & blocking_never)
      ? boost::asio::execution::blocking_t(boost::asio::execution::blocking.never)
      : boost::asio::execution::blocking_t(boost::asio::execution::blocking.possibly);
  }

  constexpr boost::asio::execution::relationship_t query(
      boost::asio::execution::relationship_t) const noexcept
  {
    return (bits() & relationship_continuation)
      ? boost::asio::execution::relationship_t(boost::asio::execution::relationship.continuation)
      : boost::asio::execution::relationship_t(boost::asio::execution::relationship.fork);
  }

  static constexpr boost::asio::execution::outstanding_work_t query(
      boost::asio::execution::outstanding_work_t) noexcept
  {
    return (Bits & outstanding_work_tracked)
      ? boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.tracked)
      : boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.untracked);
  }

  template <typename OtherAllocator>
  constexpr Allocator query(boost::asio::execution::allocator_t<OtherAllocator>) const noexcept
  {
    return static_cast<const Allocator&>(*this);
  }

  constexpr Allocator query(boost::asio::execution::allocator_t<void>) const noexcept
  {
    return static_cast<const Allocator&>(*this);
  }

  constexpr priority_class query(zokio::priority::current_t) const noexcept
  {
    return priority();
  }

  /// Whether the calling thread is running the context.
  bool running_in_this_thread() const noexcept { return scheduler_ptr()->can_dispatch(); }

  friend bool operator==(const scheduler_executor& a, const scheduler_executor& b) noexcept
  {
    return a.target_ == b.target_
      && static_cast<const Allocator&>(a) == static_cast<const Allocator&>(b);
  }

  friend bool operator!=(const scheduler_executor& a, const scheduler_executor& b) noexcept
  {
    return !(a == b);
  }

  /// Submits f: runs it at once if blocking.possibly and the calling thread
  /// runs the context, otherwise queues it in its scheduling class.
  template <typename Function>
  void execute(Function&& f) const
  {
    using function_type = std::decay_t<Function>;
    scheduler& s = *scheduler_ptr();

    // Invoke at once if blocking.possibly and already inside the context.
    // An exception is kept and rethrown by the run function once the current
    // handler returns (as boost::asio::io_context does).
    if ((bits() & blocking_never) == 0 && s.can_dispatch())
    {
      function_type tmp(std::forward<Function>(f));
      try
      {
        std::move(tmp)();
      }
      catch (...)
      {
        s.capture_current_exception();
      }
      return;
    }

    auto* op = executor_op<function_type, Allocator>::create(
        std::forward<Function>(f), static_cast<const Allocator&>(*this));
    s.post_immediate(op, (bits() & relationship_continuation) != 0, priority());
  }

#if !defined(BOOST_ASIO_NO_TS_EXECUTORS)
  /// The context this executor submits to.
  Context& context() const noexcept { return *context_ptr(); }

  /// Counts outstanding work (keeps run() from returning).
  void on_work_started() const noexcept { scheduler_ptr()->work_started(); }

  /// Ends a unit of work counted by on_work_started().
  void on_work_finished() const noexcept { scheduler_ptr()->work_finished(); }

  /// Runs f now if the calling thread runs the context, else queues it.
  template <typename Function, typename OtherAllocator>
  void dispatch(Function&& f, const OtherAllocator& a) const
  {
    using function_type = std::decay_t<Function>;
    scheduler& s = *scheduler_ptr();
    if (s.can_dispatch())
    {
      function_type tmp(std::forward<Function>(f));
      std::move(tmp)();
      return;
    }
    s.post_immediate(executor_op<function_type, OtherAllocator>::create(std::forward<Function>(f), a),
        false, priority());
  }

  /// Queues f.
  template <typename Function, typename OtherAllocator>
  void post(Function&& f, const OtherAllocator& a) const
  {
    using function_type = std::decay_t<Function>;
    scheduler_ptr()->post_immediate(
        executor_op<function_type, OtherAllocator>::create(std::forward<Function>(f), a),
        false, priority());
  }

  /// Queues f as a continuation of the caller.
  template <typename Function, typename OtherAllocator>
  void defer(Function&& f, const OtherAllocator& a) const
  {
    using function_type = std::decay_t<Function>;
    scheduler_ptr()->post_immediate(
        executor_op<function_type, OtherAllocator>::create(std::forward<Function>(f), a),
        true, priority());
  }
#endif // !defined(BOOST_ASIO_NO_TS_EXECUTORS)

  /// (Internal) The scheduler this executor submits to.
  scheduler& zokio_scheduler() const noexcept { return *scheduler_ptr(); }

private:
  friend Context;
  template <typename, typename, std::uintptr_t> friend class scheduler_executor;

  explicit scheduler_executor(Context& c) noexcept
    : Allocator(), target_(reinterpret_cast<std::uintptr_t>(&c))
  {
    if (Bits & outstanding_work_tracked)
      scheduler_ptr()->work_started();
  }

  scheduler_executor(Context* c, const Allocator& a, std::uintptr_t bits) noexcept
    : Allocator(a), target_(reinterpret_cast<std::uintptr_t>(c) | bits)
  {
    if (Bits & outstanding_work_tracked)
      if (context_ptr())
        scheduler_ptr()->work_started();
  }

  Context* context_ptr() const noexcept
  {
    return reinterpret_cast<Context*>(target_ & ~std::uintptr_t(runtime_bits));
  }

  scheduler* scheduler_ptr() const noexcept { return &context_ptr()->impl(); }

  std::uintptr_t bits() const noexcept { return target_ & runtime_bits; }

  constexpr scheduler_executor with_priority(priority_class c) const
  {
    return scheduler_executor(context_ptr(), *this,
        (bits() & ~std::uintptr_t(priority_mask)) | (static_cast<std::uintptr_t>(c) << priority_shift));
  }

  constexpr priority_class priority() const noexcept
  {
    return static_cast<priority_class>((target_ & priority_mask) >> priority_shift);
  }

  std::uintptr_t target_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SCHEDULER_EXECUTOR_HPP
