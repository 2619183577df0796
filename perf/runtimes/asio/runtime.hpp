// Selects the runtime under test for the sources in perf/runtimes/asio/.
//
// The same source is compiled three times (see perf/CMakeLists.txt):
//   PERF_RUNTIME_ZOKIO   zokio::io_context, zokio::steady_timer, zokio::ip::tcp
//   (neither)            boost::asio with its default reactor (epoll)
//   asio_uring           boost::asio with BOOST_ASIO_HAS_IO_URING and
//                        BOOST_ASIO_DISABLE_EPOLL (set on the command line)
// Everything else (post, buffers, composed operations, work guards) is Asio's,
// exactly as an application that swaps its io_context would use it.
#pragma once

#include <boost/asio.hpp>

#if defined(PERF_RUNTIME_ZOKIO)
#include <zokio/zokio.hpp>
namespace rt = zokio;
#else
namespace rt = boost::asio;
#endif

#include <string>
#include <type_traits>

#include "bench.hpp"

namespace perf {

namespace asio = boost::asio;

#ifndef PERF_RUNTIME_NAME
#define PERF_RUNTIME_NAME "asio"
#endif
inline constexpr const char* runtime_name = PERF_RUNTIME_NAME;

// The context's counters as a JSON object, when the runtime has them
// (zokio::io_context::statistics()); "{}" for Asio.
template <class Context>
std::string context_statistics(Context& ctx) {
  if constexpr (requires(Context& c) { c.statistics(); }) {
    auto s = ctx.statistics();
    json_line j;
    j.add("submissions", std::uint64_t(s.submissions))
        .add("kernel_entries", std::uint64_t(s.kernel_entries))
        .add("completions", std::uint64_t(s.completions))
        .add("batches", std::uint64_t(s.batches))
        .add("max_batch", std::uint64_t(s.max_batch))
        .add("handlers_run", std::uint64_t(s.handlers_run))
        .add("wakeups", std::uint64_t(s.wakeups));
    if constexpr (requires { s.sleeps; }) j.add("sleeps", std::uint64_t(s.sleeps));
    if constexpr (requires { s.timers_fired; }) j.add("timers_fired", std::uint64_t(s.timers_fired));
    if constexpr (requires { s.rings; }) j.add("rings", std::uint64_t(s.rings));
    return j.str();
  } else {
    (void)ctx;
    return "{}";
  }
}

}  // namespace perf
