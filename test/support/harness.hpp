// test/support/harness.hpp: one way to drive each zokio context type, so
// that a suite written once runs on every one of them.
#ifndef ZOKIO_TEST_SUPPORT_HARNESS_HPP
#define ZOKIO_TEST_SUPPORT_HARNESS_HPP

#include <support/run.hpp>

#include <zokio/io_context.hpp>
#include <zokio/thread_pool.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace zokio_test {

// An io_context run by the test thread.
struct io_context_harness
{
  using context_type = zokio::io_context;
  static constexpr const char* name = "io_context";
  zokio::io_context ctx;

  // Runs until no work is left.
  void run() { run_bounded(ctx); }
};

// A thread_pool of two workers (already running); run() waits for the work
// to finish by joining the pool.
struct thread_pool_harness
{
  using context_type = zokio::thread_pool;
  static constexpr const char* name = "thread_pool";
  zokio::thread_pool ctx{2};

  void run(std::chrono::milliseconds limit = std::chrono::seconds(20))
  {
    std::atomic<bool> done{false};
    std::atomic<bool> fired{false};
    std::thread watchdog([&] {
      auto until = std::chrono::steady_clock::now() + limit;
      while (!done.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (!done.load())
      {
        fired = true;
        ctx.stop();
      }
    });
    try
    {
      ctx.join();
    }
    catch (...)
    {
      done = true;
      watchdog.join();
      throw;
    }
    done = true;
    watchdog.join();
    BOOST_TEST(!fired.load(), "the pool did not run out of work within the time limit");
  }
};

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_HARNESS_HPP
