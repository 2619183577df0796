// zokio/timer/system_timer.hpp: a waitable timer on std::chrono::system_clock.
#ifndef ZOKIO_TIMER_SYSTEM_TIMER_HPP
#define ZOKIO_TIMER_SYSTEM_TIMER_HPP

#include <zokio/timer/basic_waitable_timer.hpp>

#include <chrono>

namespace zokio {

/// Typedef for a timer based on std::chrono::system_clock (as boost::asio::system_timer).
using system_timer = basic_waitable_timer<std::chrono::system_clock>;

} // namespace zokio

#endif // ZOKIO_TIMER_SYSTEM_TIMER_HPP
