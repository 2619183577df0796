// zokio/priority.hpp: scheduling classes, as executor properties.
#ifndef ZOKIO_PRIORITY_HPP
#define ZOKIO_PRIORITY_HPP

#include <zokio/detail/config.hpp>

#include <boost/asio/execution/executor.hpp>

namespace zokio {

/// The scheduling class of work submitted through an executor.
/**
 * As of this version: a thread that runs a zokio context takes work in this
 * order: an @c immediate handler if any is queued; otherwise @c normal work
 * (its own queue, then work queued from other threads, then completions);
 * otherwise a @c background handler; otherwise it steals from other threads
 * or sleeps. Starvation bound: while normal work keeps coming, each thread
 * still runs one queued background handler after every 128 handlers.
 * Immediate and background handlers are queued per context, so any thread
 * of the context may run them.
 */
enum class priority_class
{
  normal = 0,
  immediate = 1,
  background = 2,
};

namespace priority {

namespace detail {

// Common traits of the three requirable properties.
template <priority_class Class>
struct class_property
{
  template <typename T>
  static constexpr bool is_applicable_property_v = boost::asio::execution::is_executor<T>::value;

  static constexpr bool is_requirable = true;
  static constexpr bool is_preferable = true;
  using polymorphic_query_result_type = priority_class;

  static constexpr priority_class value() noexcept { return Class; }
};

} // namespace detail

/// Work that runs before everything else queued.
struct immediate_t : detail::class_property<priority_class::immediate>
{
};

/// The default class.
struct normal_t : detail::class_property<priority_class::normal>
{
};

/// Work that runs when nothing else is queued, within the starvation bound.
struct background_t : detail::class_property<priority_class::background>
{
};

/// Query property: the class of an executor (asio::query(ex, zokio::priority::current)).
struct current_t
{
  template <typename T>
  static constexpr bool is_applicable_property_v = boost::asio::execution::is_executor<T>::value;

  static constexpr bool is_requirable = false;
  static constexpr bool is_preferable = false;
  using polymorphic_query_result_type = priority_class;
};

inline constexpr immediate_t immediate{};
inline constexpr normal_t normal{};
inline constexpr background_t background{};
inline constexpr current_t current{};

} // namespace priority
} // namespace zokio

#endif // ZOKIO_PRIORITY_HPP
