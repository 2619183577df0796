// test/support/run.hpp: running a context in tests without hanging forever.
#ifndef ZOKIO_TEST_SUPPORT_RUN_HPP
#define ZOKIO_TEST_SUPPORT_RUN_HPP

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace zokio_test {

// Runs ctx.run() on the calling thread; if it has not returned after limit,
// stops the context and fails the test (instead of hanging the suite).
template <typename Context>
std::size_t run_bounded(Context& ctx, std::chrono::milliseconds limit = std::chrono::seconds(20))
{
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> fired{false};
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(m);
    if (!cv.wait_for(lock, limit, [&] { return done; }))
    {
      fired = true;
      ctx.stop();
    }
  });
  std::size_t n = 0;
  try
  {
    n = ctx.run();
  }
  catch (...)
  {
    { std::lock_guard<std::mutex> lock(m); done = true; }
    cv.notify_all();
    watchdog.join();
    throw;
  }
  { std::lock_guard<std::mutex> lock(m); done = true; }
  cv.notify_all();
  watchdog.join();
  BOOST_TEST(!fired.load(), "run() did not return within the time limit");
  return n;
}

// Steady-clock milliseconds since t0, as a double.
inline double ms_since(std::chrono::steady_clock::time_point t0)
{
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_RUN_HPP
