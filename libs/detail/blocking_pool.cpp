// libs/detail/blocking_pool.cpp: see blocking_pool.hpp.
#include "detail/blocking_pool.hpp"
#include "detail/transfer.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <pthread.h>

namespace zokio {
namespace detail {
namespace {

std::size_t configured_threads() noexcept
{
  if (const char* v = std::getenv("ZOKIO_BLOCKING_THREADS"))
  {
    char* end = nullptr;
    unsigned long n = std::strtoul(v, &end, 10);
    if (end != v && *end == '\0' && n > 0)
      return std::min<unsigned long>(n, 1024);
  }
  return 8;
}

} // namespace

blocking_pool& blocking_pool::instance()
{
  // Destroyed at exit, after every context of a well-formed program (a
  // context's driver waits for its calls before it is destroyed).
  static blocking_pool pool;
  return pool;
}

blocking_pool::blocking_pool() : max_threads_(configured_threads())
{
  // fork(): the child has none of the pool's threads. The mutex is held
  // across the fork (so the child's copy is not left locked by a thread it
  // does not have); in the child the thread objects are let go unjoined
  // (their threads do not exist there) and the counts start again, so the
  // next call starts a thread. Calls those threads were making are the
  // parent's; queued ones stay queued for the child's threads.
  ::pthread_atfork(
      [] { instance().mutex_.lock(); },
      [] { instance().mutex_.unlock(); },
      [] {
        blocking_pool& p = instance();
        // Never destroyed: destroying a joinable std::thread terminates.
        new std::vector<std::thread>(std::move(p.threads_));
        p.threads_.clear();
        p.idle_ = 0;
        p.finishing_ = 0;
        p.mutex_.unlock();
      });
}

blocking_pool::~blocking_pool()
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_)
    t.join();
}

std::size_t blocking_pool::threads() const noexcept
{
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

void blocking_pool::submit(io_operation* op, done_func done, void* owner)
{
  std::unique_lock<std::mutex> lock(mutex_);
  jobs_.push(job{op, done, owner});
  // A thread that is handing its last call back (finishing_) takes this
  // one next: a chain of one call at a time keeps to one thread.
  if (idle_ + finishing_ == 0 && threads_.size() < max_threads_)
  {
    try
    {
      // Started with every signal blocked; the mask is inherited.
      sigset_t all, old;
      sigfillset(&all);
      ::pthread_sigmask(SIG_SETMASK, &all, &old);
      try
      {
        threads_.emplace_back([this] { work(); });
      }
      catch (...)
      {
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
      }
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    catch (...)
    {
      if (threads_.empty())
      {
        // Nobody would ever make the call.
        jobs_.drop_last();
        throw;
      }
      // The threads that run take it in turn.
    }
  }
  lock.unlock();
  ready_.notify_one();
}

bool blocking_pool::try_cancel(io_operation* op) noexcept
{
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.erase(op);
}

void blocking_pool::work() noexcept
{
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;)
  {
    ++idle_;
    ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty())
      return;  // stopping
    job j = jobs_.pop();
    lock.unlock();
    long n;
    do
      n = transfer(j.op->req_);
    while (n < 0 && errno == EINTR);
    j.op->result_ = n < 0 ? -errno : static_cast<int>(n);
    lock.lock();
    ++finishing_;
    lock.unlock();
    j.done(j.owner, j.op);
    lock.lock();
    --finishing_;
  }
}

} // namespace detail
} // namespace zokio
