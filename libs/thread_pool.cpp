// libs/thread_pool.cpp: zokio::thread_pool.
#include <zokio/thread_pool.hpp>
#include <zokio/detail/asio_bridge.hpp>

#include <algorithm>

namespace zokio {
namespace {

std::size_t default_threads()
{
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

} // namespace

thread_pool::thread_pool()
  : thread_pool(default_threads())
{
}

thread_pool::thread_pool(std::size_t num_threads)
  : impl_(detail::install_scheduler(*this, static_cast<int>(std::max<std::size_t>(1, num_threads)),
        detail::driver_sizes{}, detail::scheduler::context_kind::thread_pool))
{
  // The pool itself counts as work until join(), so idle workers wait for
  // work instead of returning.
  impl_.work_started();
  num_threads = std::max<std::size_t>(1, num_threads);
  threads_.reserve(num_threads);
  try
  {
    for (std::size_t i = 0; i < num_threads; ++i)
      threads_.emplace_back([this] { run_worker(); });
  }
  catch (...)
  {
    stop();
    for (auto& t : threads_)
      t.join();
    throw;
  }
}

thread_pool::~thread_pool()
{
  stop();
  try
  {
    join();
  }
  catch (...)
  {
    // A handler's exception nobody asked for: dropped (see the class docs).
  }
  // Services are shut down and destroyed by execution_context's destructor,
  // once each, as after boost::asio::thread_pool's stop() and join().
}

void thread_pool::run_worker()
{
  for (;;)
  {
    try
    {
      impl_.run();
      // For good: this thread is about to exit (or, from attach(), to leave
      // the pool), and its ring can only be entered by it. The scheduler's
      // retirement takes the Asio bridge's poll and the lasting multishot
      // requests (an acceptor's multishot accept) out of it.
      impl_.retire_this_thread();
      return;
    }
    catch (...)
    {
      record(std::current_exception());
    }
  }
}

void thread_pool::record(std::exception_ptr e)
{
  std::lock_guard<std::mutex> lock(mutex_);
  if (!first_exception_)
    first_exception_ = e;
}

void thread_pool::stop()
{
  impl_.stop();
}

void thread_pool::attach()
{
  run_worker();
}

void thread_pool::join()
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!joined_)
    {
      joined_ = true;
      impl_.work_finished(); // the pool's own unit: run() returns once work runs out
    }
  }
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  std::exception_ptr e;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    e = std::exchange(first_exception_, nullptr);
  }
  if (e)
    std::rethrow_exception(e);
}

void thread_pool::wait()
{
  join();
}

} // namespace zokio
