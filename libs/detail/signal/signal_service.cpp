// libs/detail/signal/signal_service.cpp: the process-wide signal handler,
// its self-pipe, and the services that read it (the protocol is at the top
// of zokio/detail/signal/signal_service.hpp).
#include <zokio/detail/signal/signal_service.hpp>

#include <zokio/detail/sched/runner.hpp>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <new>

#include <fcntl.h>
#include <unistd.h>

namespace zokio {
namespace detail {

struct signal_service::registration
{
  int signal_number = 0;
  set_state* set = nullptr;
  std::size_t undelivered = 0;           // signals counted while the set had no wait
  registration* next_in_set = nullptr;
  registration* prev_in_table = nullptr;  // the service's table_[signal_number]
  registration* next_in_table = nullptr;
};

namespace {

// Read by the handler: lock-free atomics only (async-signal-safe).
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(max_signal_number <= 256, "a signal number travels as one byte");
static_assert(std::atomic<int>::is_always_lock_free);
std::atomic<bool> raised[max_signal_number];
std::atomic<int> pipe_write_fd{-1};

// The actions zokio's handler replaced, by signal number: written under
// the registry's mutex before the handler is installed for that number,
// read by the handler to chain to them.
struct sigaction previous[max_signal_number];

// Everything else, under mutex. Never destroyed: a signal may arrive while
// static objects are being destroyed at exit.
struct registry
{
  std::mutex mutex;
  int pipe_read_fd = -1;
  int registrations[max_signal_number] = {};
  signal_service* services = nullptr;
};

registry& the_registry()
{
  static registry* r = new registry;
  return *r;
}

void chain(int sig, ::siginfo_t* info, void* context)
{
  const struct sigaction& p = previous[sig];
  if (p.sa_flags & SA_SIGINFO)
  {
    if (p.sa_sigaction)
      p.sa_sigaction(sig, info, context);
  }
  else if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN && p.sa_handler != nullptr)
  {
    p.sa_handler(sig);
  }
}

extern "C" void zokio_signal_handler(int sig, ::siginfo_t* info, void* context)
{
  const int saved_errno = errno;
  if (sig > 0 && sig < max_signal_number)
  {
    // One byte per signal, its number, so that each is counted as Asio
    // counts them. A full pipe (EAGAIN) cannot take it: the flag keeps the
    // signal instead (a byte already waiting makes a reader look at the
    // flags; release, the reader's exchange is acq_rel).
    const int fd = pipe_write_fd.load(std::memory_order_relaxed);
    const unsigned char byte = static_cast<unsigned char>(sig);
    if (fd < 0 || ::write(fd, &byte, 1) != 1)
      raised[sig].store(true, std::memory_order_release);
    chain(sig, info, context);
  }
  errno = saved_errno;
}

boost::system::error_code errno_code(int e)
{
  return boost::system::error_code(e, boost::asio::error::get_system_category());
}

// The self-pipe, made once (close-on-exec, both ends non-blocking). Under
// the registry's mutex.
bool ensure_pipe(registry& r, boost::system::error_code& ec)
{
  if (r.pipe_read_fd >= 0)
    return true;
  int fds[2];
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
  {
    ec = errno_code(errno);
    return false;
  }
#else
  if (::pipe(fds) != 0)
  {
    ec = errno_code(errno);
    return false;
  }
  for (int fd : fds)
  {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
#endif
  r.pipe_read_fd = fds[0];
  pipe_write_fd.store(fds[1], std::memory_order_release);
  // A child must not share the pipe with its parent (a signal the child
  // catches would be read by the parent's services, and the reverse). So
  // every child gets a pipe of its own, made by the fork handler below; a
  // service's read moves to it at notify_fork(fork_child). The mutex is
  // taken around fork() so that a child never starts with it held by a
  // thread it does not have.
  static std::once_flag handlers;
  std::call_once(handlers, [] {
    ::pthread_atfork(
        [] { the_registry().mutex.lock(); },
        [] { the_registry().mutex.unlock(); },
        [] {
          registry& r = the_registry();
          const int old_write = pipe_write_fd.load(std::memory_order_relaxed);
          int fresh[2];
          if (r.pipe_read_fd >= 0 && ::pipe2(fresh, O_CLOEXEC | O_NONBLOCK) == 0)
          {
            ::close(r.pipe_read_fd);
            ::close(old_write);
            r.pipe_read_fd = fresh[0];
            pipe_write_fd.store(fresh[1], std::memory_order_release);
          }
          r.mutex.unlock();
        });
  });
  return true;
}

} // namespace

// Delivery of raised signals to every service (registry mutex held by the
// caller); the operations to post are collected per service and posted by
// the caller after the lock.
struct signal_delivery
{
  static void deliver(registry& r, int sig)
  {
    for (signal_service* s = r.services; s; s = s->next_service_)
    {
      for (signal_service::registration* reg = s->table_[sig]; reg; reg = reg->next_in_table)
      {
        signal_service::set_state* set = reg->set;
        if (set->head_ == nullptr)
        {
          ++reg->undelivered;
          continue;
        }
        while (signal_op* op = set->head_)
        {
          set->head_ = op->next_wait_;
          op->next_wait_ = nullptr;
          op->signal_number_ = sig;
          op->ec_ = boost::system::error_code();
          s->scheduler_.post_deferred(op);
        }
        set->tail_ = nullptr;
      }
    }
  }

  // Delivers the signals whose numbers a read took from the pipe (n
  // bytes), then every flag a full pipe left raised.
  static void deliver_read(const unsigned char* bytes, int n)
  {
    registry& r = the_registry();
    if (n > 0)
    {
      std::lock_guard<std::mutex> lock(r.mutex);
      for (int i = 0; i < n; ++i)
        if (bytes[i] > 0 && bytes[i] < max_signal_number)
          deliver(r, bytes[i]);
    }
    for (int sig = 1; sig < max_signal_number; ++sig)
    {
      if (!raised[sig].load(std::memory_order_relaxed))
        continue;
      if (!raised[sig].exchange(false, std::memory_order_acq_rel))
        continue;
      std::lock_guard<std::mutex> lock(r.mutex);
      deliver(r, sig);
    }
  }
};

signal_service::pipe_read::pipe_read(signal_service* service) noexcept
  : io_operation(&do_complete), service_(service)
{
  req_.kind = io_request::read;
  req_.data = buffer_;
  req_.size = sizeof(buffer_);
  // The pipe is shared by every service and non-blocking: a read that
  // another service beat to the byte waits again (poll and retry on
  // io_uring where the kernel returns EAGAIN).
  req_.hints = io_request::stream | io_request::poll_then_retry;
}

void signal_service::pipe_read::do_start(scheduler* owner, operation* base)
{
  auto* o = static_cast<pipe_read*>(base);
  if (owner == nullptr || o->service_->shut_down_.load(std::memory_order_relaxed))
    return;  // shutting down: the step belongs to the service
  o->set_armed();
  o->service_->armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  owner->this_thread_runner()->start_internal(o);
}

void signal_service::pipe_read::do_complete(scheduler* owner, operation* base)
{
  auto* o = static_cast<pipe_read*>(base);
  if (owner == nullptr || o->service_->shut_down_.load(std::memory_order_relaxed))
    return;
  const int res = o->result_;
  // Re-armed first, on this runner (also after -ECANCELED: the ring of a
  // thread that left was torn down and this runner took over). Any other
  // error would repeat at once: the read is given up, and the next add()
  // arms it again.
  if (res >= 0 || res == -ECANCELED || res == -EINTR || res == -EAGAIN)
  {
    o->service_->armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    owner->this_thread_runner()->start_internal(o);
  }
  else
  {
    o->service_->read_started_.store(false, std::memory_order_release);
  }
  signal_delivery::deliver_read(o->buffer_, res);
}

signal_service::signal_service(boost::asio::execution_context& ctx)
  : boost::asio::detail::execution_context_service_base<signal_service>(ctx),
    scheduler_(boost::asio::use_service<scheduler>(ctx)),
    read_(this)
{
  registry& r = the_registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    next_service_ = r.services;
    if (r.services)
      r.services->prev_service_ = this;
    r.services = this;
  }
  scheduler_.add_idle_hook(this);
}

signal_service::~signal_service()
{
  shutdown();
}

void signal_service::shutdown()
{
  registry& r = the_registry();
  signal_op* abandoned = nullptr;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (shut_down_.exchange(true))
      return;
    for (int sig = 1; sig < max_signal_number; ++sig)
    {
      while (registration* reg = table_[sig])
      {
        table_[sig] = reg->next_in_table;
        reg->set->regs_ = nullptr;  // every registration of a set is in this service
        if (--r.registrations[sig] == 0)
          ::sigaction(sig, &previous[sig], nullptr);
        delete reg;
      }
    }
    // The waiting operations leave their sets now and are destroyed after
    // the lock: destroying a handler may destroy a signal_set (one in a
    // coroutine's frame), which takes the registry's mutex.
    while (set_state* s = sets_)
    {
      while (signal_op* op = s->head_)
      {
        s->head_ = op->next_wait_;
        op->next_wait_ = abandoned;
        abandoned = op;
      }
      s->tail_ = nullptr;
      sets_ = s->next_set_;
      s->prev_set_ = s->next_set_ = nullptr;
      s->orphaned_ = true;  // its object frees it without this service
    }
    if (prev_service_)
      prev_service_->next_service_ = next_service_;
    else if (r.services == this)
      r.services = next_service_;
    if (next_service_)
      next_service_->prev_service_ = prev_service_;
    prev_service_ = next_service_ = nullptr;
  }
  while (signal_op* op = abandoned)
  {
    abandoned = op->next_wait_;
    op->destroy();
  }
}

signal_service::set_state* signal_service::create()
{
  auto* s = new set_state;
  registry& r = the_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  s->next_set_ = sets_;
  if (sets_)
    sets_->prev_set_ = s;
  sets_ = s;
  return s;
}

void signal_service::destroy(signal_service* service, set_state* s) noexcept
{
  registry& r = the_registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (s->orphaned_)
    {
      delete s;
      return;
    }
  }
  boost::system::error_code ignored;
  service->clear(s, ignored);
  service->cancel(s, ignored);
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (s->prev_set_)
      s->prev_set_->next_set_ = s->next_set_;
    else if (service->sets_ == s)
      service->sets_ = s->next_set_;
    if (s->next_set_)
      s->next_set_->prev_set_ = s->prev_set_;
  }
  delete s;
}

void signal_service::add(set_state* s, int signal_number, boost::system::error_code& ec)
{
  if (signal_number <= 0 || signal_number >= max_signal_number)
  {
    ec = boost::asio::error::invalid_argument;
    return;
  }
  registry& r = the_registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (shut_down_.load(std::memory_order_relaxed))
    {
      ec = boost::asio::error::shut_down;
      return;
    }
    for (registration* reg = s->regs_; reg; reg = reg->next_in_set)
    {
      if (reg->signal_number == signal_number)
      {
        ec = boost::system::error_code();
        return;  // already in the set
      }
    }
    if (!ensure_pipe(r, ec))
      return;
    auto* reg = new (std::nothrow) registration;
    if (reg == nullptr)
    {
      ec = boost::asio::error::no_memory;
      return;
    }
    if (r.registrations[signal_number] == 0)
    {
      // The action in place is kept first, then zokio's installed: the
      // handler can only run once previous[] holds what it chains to.
      struct sigaction sa;
      std::memset(&sa, 0, sizeof(sa));
      sa.sa_sigaction = &zokio_signal_handler;
      sa.sa_flags = SA_SIGINFO | SA_RESTART;
      sigfillset(&sa.sa_mask);
      if (::sigaction(signal_number, nullptr, &previous[signal_number]) != 0
          || ::sigaction(signal_number, &sa, nullptr) != 0)
      {
        ec = errno_code(errno);
        delete reg;
        return;
      }
    }
    ++r.registrations[signal_number];
    reg->signal_number = signal_number;
    reg->set = s;
    reg->next_in_set = s->regs_;
    s->regs_ = reg;
    reg->next_in_table = table_[signal_number];
    if (reg->next_in_table)
      reg->next_in_table->prev_in_table = reg;
    table_[signal_number] = reg;
  }
  ec = boost::system::error_code();
  arm_read();
}

void signal_service::remove(set_state* s, int signal_number, boost::system::error_code& ec)
{
  if (signal_number <= 0 || signal_number >= max_signal_number)
  {
    ec = boost::asio::error::invalid_argument;
    return;
  }
  registry& r = the_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  ec = boost::system::error_code();  // not in the set: nothing to do
  for (registration** p = &s->regs_; *p; p = &(*p)->next_in_set)
  {
    registration* reg = *p;
    if (reg->signal_number != signal_number)
      continue;
    *p = reg->next_in_set;
    if (reg->prev_in_table)
      reg->prev_in_table->next_in_table = reg->next_in_table;
    else
      table_[signal_number] = reg->next_in_table;
    if (reg->next_in_table)
      reg->next_in_table->prev_in_table = reg->prev_in_table;
    // The last registration in the process: the action that was there
    // before zokio's comes back (another library's handler, or the default).
    if (--r.registrations[signal_number] == 0)
    {
      if (::sigaction(signal_number, &previous[signal_number], nullptr) != 0)
        ec = errno_code(errno);
    }
    delete reg;
    return;
  }
}

void signal_service::clear(set_state* s, boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  for (;;)
  {
    int sig;
    {
      std::lock_guard<std::mutex> lock(the_registry().mutex);
      if (s->regs_ == nullptr)
        return;
      sig = s->regs_->signal_number;
    }
    boost::system::error_code e;
    remove(s, sig, e);
    if (e)
      ec = e;
  }
}

void signal_service::cancel(set_state* s, boost::system::error_code& ec)
{
  {
    std::lock_guard<std::mutex> lock(the_registry().mutex);
    while (signal_op* op = s->head_)
    {
      s->head_ = op->next_wait_;
      op->next_wait_ = nullptr;
      op->ec_ = boost::asio::error::operation_aborted;
      op->signal_number_ = 0;
      scheduler_.post_deferred(op);
    }
    s->tail_ = nullptr;
  }
  ec = boost::system::error_code();
}

void signal_service::cancel_by_key(set_state* s, void* key) noexcept
{
  std::lock_guard<std::mutex> lock(the_registry().mutex);
  signal_op* prev = nullptr;
  for (signal_op* op = s->head_; op; prev = op, op = op->next_wait_)
  {
    if (op->key_ != key)
      continue;
    (prev ? prev->next_wait_ : s->head_) = op->next_wait_;
    if (s->tail_ == op)
      s->tail_ = prev;
    op->next_wait_ = nullptr;
    op->ec_ = boost::asio::error::operation_aborted;
    op->signal_number_ = 0;
    scheduler_.post_deferred(op);
    return;
  }
}

void signal_service::start_wait(set_state* s, signal_op* op)
{
  // Outstanding work until it is posted (as any pending operation).
  scheduler_.work_started();
  {
    std::lock_guard<std::mutex> lock(the_registry().mutex);
    if (shut_down_.load(std::memory_order_relaxed))
    {
      op->ec_ = boost::asio::error::shut_down;
      scheduler_.post_deferred(op);
      return;
    }
    for (registration* reg = s->regs_; reg; reg = reg->next_in_set)
    {
      if (reg->undelivered != 0)
      {
        // A signal came while the set had no wait: this one completes with it.
        --reg->undelivered;
        op->signal_number_ = reg->signal_number;
        scheduler_.post_deferred(op);
        return;
      }
    }
    op->next_wait_ = nullptr;
    if (s->tail_)
      s->tail_->next_wait_ = op;
    else
      s->head_ = op;
    s->tail_ = op;
  }
  arm_read();
}

void signal_service::arm_read()
{
  if (read_started_.load(std::memory_order_acquire))
    return;
  {
    // No pipe yet (no number was ever added in the process): nothing to read.
    std::lock_guard<std::mutex> lock(the_registry().mutex);
    if (the_registry().pipe_read_fd < 0)
      return;
    if (read_started_.exchange(true))
      return;
    read_.req_.fd = the_registry().pipe_read_fd;
  }
  if (runner* r = scheduler_.this_thread_runner())
  {
    read_.set_armed();
    armed_by_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    r->start_internal(&read_);
  }
  else
  {
    read_.set_start();
    scheduler_.post_internal(&read_);
  }
}

void signal_service::notify_fork(boost::asio::execution_context::fork_event event)
{
  // The child: the fork handler gave the process a pipe of its own; the
  // read, which the parent's ring or poller held, completes in the child
  // with -ECANCELED (scheduler::notify_fork, which runs first) and re-arms
  // on the new read end.
  if (event != boost::asio::execution_context::fork_child)
    return;
  std::lock_guard<std::mutex> lock(the_registry().mutex);
  if (the_registry().pipe_read_fd >= 0)
    read_.req_.fd = the_registry().pipe_read_fd;
}

void signal_service::retire_this_thread() noexcept
{
  if (!read_started_.load(std::memory_order_acquire)
      || armed_by_.load(std::memory_order_relaxed) != std::this_thread::get_id())
    return;
  if (runner* r = read_.runner_)
    r->cancel_internal(&read_);  // its completion re-arms it on the runner that reaps it
}

} // namespace detail
} // namespace zokio
