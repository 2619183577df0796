// zokio/timer/steady_timer.hpp: a waitable timer on std::chrono::steady_clock.
#ifndef ZOKIO_TIMER_STEADY_TIMER_HPP
#define ZOKIO_TIMER_STEADY_TIMER_HPP

#include <zokio/timer/basic_waitable_timer.hpp>

#include <chrono>

namespace zokio {

/// Typedef for a timer based on std::chrono::steady_clock (as boost::asio::steady_timer).
using steady_timer = basic_waitable_timer<std::chrono::steady_clock>;

} // namespace zokio

#endif // ZOKIO_TIMER_STEADY_TIMER_HPP
