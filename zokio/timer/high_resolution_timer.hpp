// zokio/timer/high_resolution_timer.hpp: a waitable timer on std::chrono::high_resolution_clock.
#ifndef ZOKIO_TIMER_HIGH_RESOLUTION_TIMER_HPP
#define ZOKIO_TIMER_HIGH_RESOLUTION_TIMER_HPP

#include <zokio/timer/basic_waitable_timer.hpp>

#include <chrono>

namespace zokio {

/// Typedef for a timer based on std::chrono::high_resolution_clock (as boost::asio::high_resolution_timer).
using high_resolution_timer = basic_waitable_timer<std::chrono::high_resolution_clock>;

} // namespace zokio

#endif // ZOKIO_TIMER_HIGH_RESOLUTION_TIMER_HPP
