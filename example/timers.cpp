// example/timers.cpp: timers on a zokio::io_context, written as one would for
// boost::asio::io_context.
//
// A coroutine ticks every 10 ms and measures how late each tick is; another
// coroutine races a slow timer against a fast one with awaitable operators
// (the loser is cancelled); a plain callback stops everything after a
// deadline. Prints the mean and worst lateness and the context's statistics.
//
//   timers [ticks]        (default 50)
#include <zokio/zokio.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

asio::awaitable<void> ticker(int ticks)
{
  zokio::steady_timer timer(co_await asio::this_coro::executor);
  auto next = clock_type::now();
  double total_us = 0, worst_us = 0;
  for (int i = 0; i < ticks; ++i)
  {
    next += 10ms;
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    double late_us = std::chrono::duration<double, std::micro>(clock_type::now() - next).count();
    total_us += late_us;
    if (late_us > worst_us)
      worst_us = late_us;
  }
  std::printf("ticker: %d ticks of 10 ms, lateness mean %.1f us, worst %.1f us\n",
      ticks, total_us / ticks, worst_us);
}

asio::awaitable<void> race()
{
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  zokio::steady_timer fast(ex, 20ms), slow(ex, 10s);
  auto start = clock_type::now();
  auto winner = co_await (fast.async_wait(asio::use_awaitable) || slow.async_wait(asio::use_awaitable));
  std::printf("race: timer %zu won after %.1f ms; the other was cancelled\n", winner.index(),
      std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
}

int main(int argc, char** argv)
{
  int ticks = argc > 1 ? std::atoi(argv[1]) : 50;
  if (ticks <= 0)
  {
    std::fprintf(stderr, "usage: timers [ticks > 0]\n");
    return 2;
  }
  try
  {
    zokio::io_context ctx;

    // A watchdog: if the work has not finished within a minute, stop.
    zokio::steady_timer deadline(ctx, 60s);
    deadline.async_wait([&](boost::system::error_code ec) {
      if (!ec)
      {
        std::printf("deadline reached, stopping\n");
        ctx.stop();
      }
    });

    asio::co_spawn(ctx, ticker(ticks), [&](std::exception_ptr e) {
      deadline.cancel(); // lets run() return once the race is over too
      if (e)
        std::rethrow_exception(e);
    });
    asio::co_spawn(ctx, race(), asio::detached);
    ctx.run();

    auto s = ctx.statistics();
    std::printf("statistics: handlers %llu, timers fired %llu, kernel entries %llu, sleeps %llu\n",
        static_cast<unsigned long long>(s.handlers_run), static_cast<unsigned long long>(s.timers_fired),
        static_cast<unsigned long long>(s.kernel_entries), static_cast<unsigned long long>(s.sleeps));
    return 0;
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "timers: %s\n", e.what());
    return 1;
  }
}
