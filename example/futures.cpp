// example/futures.cpp: zokio::future on a zokio::thread_pool. The README's
// "Futures" section shows this program.
//
// A coroutine on the pool awaits timer waits and races a post against a slow
// timer with select (the loser is cancelled); the main thread, outside the
// pool, waits for the coroutine and another timer together under a timeout;
// a second coroutine is aborted while it sleeps. Exits 0 if every result is
// as expected.
#include <zokio/zokio.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>

namespace asio = boost::asio;
using namespace std::chrono_literals;

int main()
{
  zokio::thread_pool pool(2);
  zokio::steady_timer timer(pool, 5ms);
  zokio::future<void> tick = timer.async_wait(zokio::use_future);

  // A coroutine on the pool; its join_handle is a future of its result.
  zokio::join_handle<int> job = zokio::spawn(pool, [&]() -> asio::awaitable<int> {
    zokio::steady_timer t(pool, 1ms);
    co_await t.async_wait(zokio::use_future);      // no allocation in steady state
    t.expires_after(1s);
    auto r = co_await zokio::select(asio::post(pool, zokio::use_future),
                                    t.async_wait(zokio::use_future));
    co_return int(r.index());                      // 0: the post won, the wait was cancelled
  });

  // From outside the pool, get() blocks until both are done (or 1 s passed).
  auto both = zokio::timeout(zokio::when_all(std::move(tick), std::move(job)), 1s);
  auto [nothing, winner] = both.get();

  // abort() cancels a coroutine at its next co_await.
  zokio::join_handle<void> sleeper = zokio::spawn(pool, [&]() -> asio::awaitable<void> {
    zokio::steady_timer t(pool, 1h);
    co_await t.async_wait(zokio::use_future);
  });
  sleeper.abort();
  bool aborted = false;
  try
  {
    sleeper.get();
  }
  catch (const boost::system::system_error& e)
  {
    aborted = e.code() == asio::error::operation_aborted;
  }
  pool.join();
  std::printf("select winner %d, sleeper aborted: %s\n", winner, aborted ? "yes" : "no");
  return winner == 0 && aborted ? 0 : 1;
}
