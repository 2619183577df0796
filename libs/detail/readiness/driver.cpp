// libs/detail/readiness/driver.cpp: the readiness drivers' common core (the
// protocol is at the top of driver.hpp).
#include "detail/readiness/driver.hpp"

#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/provided_buffer_pool.hpp>

#include "detail/blocking_pool.hpp"
#include "detail/sigpipe.hpp"
#include "detail/throw_errno.hpp"
#include "detail/transfer.hpp"

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace readiness {
namespace {

// A connect whose first system call is done (EINPROGRESS): the next
// attempt reads its outcome. Kept in the request's flags, which connect
// does not otherwise use.
constexpr int connect_started = 1;

int accept_nonblocking(int fd, ::sockaddr* addr, ::socklen_t* len) noexcept
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) \
    || defined(__OpenBSD__) || defined(__DragonFly__)
  return ::accept4(fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
#else
  // No accept4 (macOS): the flags are set after the fact; nothing else runs
  // an exec on this thread in between.
  int s = ::accept(fd, addr, len);
  if (s >= 0)
  {
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
    ::fcntl(s, F_SETFL, ::fcntl(s, F_GETFL) | O_NONBLOCK);
  }
  return s;
#endif
}

} // namespace

template <typename Poller>
driver<Poller>::driver(runner& r, const driver_sizes& sizes)
  : runner_(r), poller_(sizes),
    max_events_(static_cast<int>(sizes.sq_entries ? sizes.sq_entries : 256))
{
  events_.reset(new event[static_cast<std::size_t>(max_events_)]);
  // Slots for the descriptors below the usual soft limit (1024) from the
  // start (64 KiB): a worker that first waits on a socket in mid-run then
  // allocates nothing; beyond that the table doubles when a higher number
  // first waits.
  slots_.resize(initial_slots);
  runner_.rings_.add();
}

template <typename Poller>
driver<Poller>::~driver()
{
  destroy_all();
}

template <typename Poller>
void driver<Poller>::destroy_all() noexcept
{
  // Calls on the blocking pool write into their operations' buffers until
  // they return: wait for them (regular-file calls end by themselves).
  for (;;)
  {
    collect_returned();
    if (offloaded_ == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pending_.clear();
  done_.clear();
  for (fd_slot& s : slots_)
    for (op_queue& q : s.ops)
      q.clear();
  pending_count_ = waiting_ = done_count_ = 0;
}

template <typename Poller>
direction driver<Poller>::direction_of(const io_request& q) noexcept
{
  switch (q.kind)
  {
  case io_request::send:
  case io_request::sendmsg:
  case io_request::connect:
  case io_request::write:
  case io_request::writev:
  case io_request::fsync:
    return dir_write;
  case io_request::poll:
    if (q.flags & POLLIN)
      return dir_read;
    if (q.flags & POLLOUT)
      return dir_write;
    return dir_except;
  default:
    return dir_read;
  }
}

template <typename Poller>
fd_slot* driver<Poller>::slot_for(int fd)
{
  if (fd < 0)
    return nullptr;
  std::size_t i = static_cast<std::size_t>(fd);
  if (i >= slots_.size())
  {
    // Amortised: doubles, so a process opening descriptors one by one
    // grows it a logarithmic number of times.
    std::size_t n = slots_.size() < initial_slots ? initial_slots : slots_.size();
    while (n <= i)
      n *= 2;
    slots_.resize(n);
  }
  return &slots_[i];
}

template <typename Poller>
bool driver<Poller>::perform(io_operation* op, const event* ev, fd_slot* slot) noexcept
{
  io_request& q = op->req_;
  if (op->cancelled_)
  {
    op->nop_ = true;
    op->result_ = -ECANCELED;
    return true;
  }
  for (;;)
  {
    long n = 0;
    switch (q.kind)
    {
    case io_request::nop:
      op->result_ = 0;
      return true;
    case io_request::recv:
      n = ::recv(q.fd, q.data, q.size, q.flags);
      break;
    case io_request::recvmsg:
      n = ::recvmsg(q.fd, static_cast<::msghdr*>(q.data), q.flags);
      break;
    case io_request::send:
      n = ::send(q.fd, q.data, q.size, q.flags);
      break;
    case io_request::sendmsg:
      n = ::sendmsg(q.fd, static_cast<const ::msghdr*>(q.data), q.flags);
      break;
    case io_request::accept:
      n = accept_nonblocking(q.fd, static_cast<::sockaddr*>(q.data),
          static_cast<::socklen_t*>(q.extra));
      break;
    case io_request::connect:
      if (!(q.flags & connect_started))
      {
        n = ::connect(q.fd, static_cast<const ::sockaddr*>(q.data),
            static_cast<::socklen_t>(q.size));
        if (n < 0 && (errno == EINPROGRESS || errno == EINTR))
        {
          // In progress: writability reports its outcome.
          q.flags |= connect_started;
          runner_.kernel_entries_.add();
          return false;
        }
      }
      else
      {
        int err = slot ? std::exchange(slot->error, 0) : 0;
        ::socklen_t len = sizeof(err);
        if (err == 0 && ::getsockopt(q.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
        runner_.kernel_entries_.add();
        op->result_ = -err;
        return true;
      }
      break;
    case io_request::poll:
    {
      const unsigned wanted = static_cast<unsigned>(q.flags) | POLLERR | POLLHUP;
      if (ev)
      {
        // Reported by the poller: no system call needed.
        if (ev->revents & wanted)
        {
          op->result_ = static_cast<int>(ev->revents & wanted);
          return true;
        }
        return false;
      }
      ::pollfd p{q.fd, static_cast<short>(q.flags), 0};
      n = ::poll(&p, 1, 0);
      runner_.kernel_entries_.add();
      if (n > 0)
      {
        if (p.revents & POLLNVAL)
        {
          op->result_ = -EBADF;
          return true;
        }
        op->result_ = p.revents;
        return true;
      }
      if (n == 0)
      {
        if (slot && (q.flags & POLLIN) && !slot->hung_up)
          slot->readable = false;
        return false;
      }
      if (errno == EINTR)
        continue;
      op->result_ = -errno;
      return true;
    }
    case io_request::recv_pooled:
    {
      // A buffer only now that data may be there; back if it is not.
      auto& pool = *static_cast<provided_buffer_pool*>(q.data);
      std::uint32_t id = pool.take();
      if (id == provided_buffer_pool::nil)
      {
        op->no_buffer_ = true;
        op->result_ = -ENOBUFS;
        return true;
      }
      n = ::recv(q.fd, pool.data_of(id), q.size, q.flags);
      const int err = errno;
      runner_.kernel_entries_.add();
      if (n > 0)
      {
        if (Poller::short_read_means_empty && slot && (q.hints & io_request::stream)
            && static_cast<std::size_t>(n) < q.size && !slot->hung_up)
          slot->readable = false;
        op->buffer_id_ = id;
        op->result_ = static_cast<int>(n);
        return true;
      }
      pool.give_back(id);
      if (n == 0)
      {
        op->result_ = (slot && slot->error != 0) ? -std::exchange(slot->error, 0) : 0;
        return true;
      }
      if (err == EINTR)
        continue;
      if (err == EAGAIN || err == EWOULDBLOCK)
      {
        if (slot && !slot->hung_up)
          slot->readable = false;
        return false;
      }
      op->result_ = -err;
      return true;
    }
    case io_request::read:
    case io_request::readv:
    case io_request::write:
    case io_request::writev:
    case io_request::fsync:
    case io_request::openat:
    case io_request::statx:
    case io_request::ftruncate:
      if (q.hints & io_request::no_sigpipe)
        sigpipe::block();
      n = transfer(q);
      if (n < 0 && errno == EPIPE && (q.hints & io_request::no_sigpipe))
        sigpipe::consume();
      break;
    case io_request::cancel:
    case io_request::custom:
      op->result_ = -EINVAL;  // not performed here (cancel: see issue)
      return true;
    }
    runner_.kernel_entries_.add();
    if (n == 0 && slot && slot->error != 0
        && (q.kind == io_request::recv || q.kind == io_request::recvmsg))
    {
      // The end of the stream is an error the poller took out of the
      // socket (a reset): report it, as the socket would have.
      op->result_ = -std::exchange(slot->error, 0);
      return true;
    }
    if (n >= 0)
    {
      // A stream receive shorter than its buffer emptied the socket (not
      // the end of the stream, 0, which every later receive sees again).
      if (Poller::short_read_means_empty && slot
          && (q.kind == io_request::recv || q.kind == io_request::read)
          && (q.hints & io_request::stream) && n > 0 && static_cast<std::size_t>(n) < q.size
          && !slot->hung_up)
        slot->readable = false;
      op->result_ = static_cast<int>(n);
      return true;
    }
    const int err = errno;
    if (err == EINTR)
      continue;
    if (q.kind == io_request::accept && (err == ECONNABORTED || err == EPROTO))
      continue;  // the peer gave up before the accept: try the next connection
    if (err == EAGAIN || err == EWOULDBLOCK)
    {
      if (slot && direction_of(q) == dir_read && !slot->hung_up)
        slot->readable = false;
      return false;
    }
    op->result_ = -err;
    return true;
  }
}

template <typename Poller>
void driver<Poller>::wait_or_fail(io_operation* op, direction d)
{
  const io_request& q = op->req_;
  fd_slot* s = nullptr;
  try
  {
    s = slot_for(q.fd);
  }
  catch (const std::bad_alloc&)
  {
    op->result_ = -ENOMEM;
    return complete(op);
  }
  if (s == nullptr)
  {
    op->result_ = -EBADF;
    return complete(op);
  }
  if (!s->registered || s->generation != q.generation)
  {
    // New here, or its number was closed and reused since: register it
    // (EPERM for a regular file, which epoll refuses; ENOMEM, ENOSPC at the
    // user's watch limit).
    std::uint64_t tag = (std::uint64_t(q.generation) << 32) | static_cast<std::uint32_t>(q.fd);
    int err = poller_.add(q.fd, tag);
    runner_.kernel_entries_.add();
    if (err != 0)
    {
      op->result_ = -err;
      return complete(op);
    }
    s->registered = true;
    s->generation = q.generation;
    s->error = 0;
    s->hung_up = false;
    // A read-direction operation just found nothing; anything else: unknown.
    // (Data already there when the descriptor is added is reported by the
    // registration itself.)
    s->readable = d != dir_read;
  }
  s->ops[d].push(op);
  ++waiting_;
}

template <typename Poller>
void driver<Poller>::issue(io_operation* op)
{
  const io_request& q = op->req_;
  if (q.kind == io_request::cancel)
    return cancel(op);
  if (q.kind == io_request::nop || q.kind == io_request::custom)
  {
    perform(op, nullptr, nullptr);
    return complete(op);
  }
  if (q.hints & io_request::blocking)
    return offload(op);
  const direction d = direction_of(q);
  // Behind an operation already waiting in the same direction: wait too,
  // without trying (order), unless that queue belongs to an older
  // registration of the number.
  fd_slot* known = nullptr;
  if (q.fd >= 0 && static_cast<std::size_t>(q.fd) < slots_.size())
  {
    fd_slot& s = slots_[static_cast<std::size_t>(q.fd)];
    if (s.generation == q.generation)
    {
      // Nothing to read since the last attempt found nothing: wait for the
      // next readable event without a system call that would fail.
      if (!s.ops[d].empty() || (d == dir_read && s.registered && !s.readable && !op->cancelled_))
      {
        s.ops[d].push(op);
        ++waiting_;
        return;
      }
      known = &s;
    }
  }
  if (perform(op, nullptr, known))
    return complete(op);
  wait_or_fail(op, d);
}

template <typename Poller>
bool driver<Poller>::unlink_waiting(io_operation* op) noexcept
{
  const io_request& q = op->req_;
  if (q.fd < 0 || static_cast<std::size_t>(q.fd) >= slots_.size())
    return false;
  op_queue& queue = slots_[static_cast<std::size_t>(q.fd)].ops[direction_of(q)];
  op_queue rest;
  bool found = false;
  while (operation* o = queue.pop())
  {
    if (o == op)
      found = true;
    else
      rest.push(o);
  }
  queue.push(rest);
  if (found)
    --waiting_;
  return found;
}

template <typename Poller>
void driver<Poller>::cancel(io_operation* c) noexcept
{
  auto* target = static_cast<io_operation*>(c->req_.data);
  c->result_ = -ENOENT;
  bool taken = false;
  if (target->req_.hints & io_request::blocking)
  {
    // Still queued on the pool: taken back. A call already being made
    // runs to its end (a regular file's read or write cannot be
    // interrupted), and the cancel reports ENOENT as io_uring's would.
    if (blocking_pool::instance().try_cancel(target))
    {
      --offloaded_;
      taken = true;
    }
  }
  else
  {
    taken = unlink_waiting(target);
  }
  if (taken)
  {
    target->result_ = -ECANCELED;
    complete(target);
    c->result_ = 0;
  }
  complete(c);
}

template <typename Poller>
void driver<Poller>::offload(io_operation* op) noexcept
{
  if (op->cancelled_)
  {
    op->nop_ = true;
    op->result_ = -ECANCELED;
    return complete(op);
  }
  try
  {
    blocking_pool::instance().submit(op, &driver::blocking_done, this);
  }
  catch (const std::bad_alloc&)
  {
    op->result_ = -ENOMEM;
    return complete(op);
  }
  catch (const std::system_error& e)
  {
    op->result_ = e.code().value() ? -e.code().value() : -EAGAIN;
    return complete(op);
  }
  ++offloaded_;
  runner_.blocking_calls_.add();
}

template <typename Poller>
void driver<Poller>::blocking_done(void* self, io_operation* op) noexcept
{
  auto* d = static_cast<driver*>(self);
  // The owner may be asleep in the poller: a wake-up (an eventfd write on
  // epoll, an EVFILT_USER trigger on kqueue) when the list was empty; a list
  // that was not has had its wake-up, and the owner looks at the flag before
  // it sleeps. Under the lock, as the push: once the owner has taken op
  // (under the lock) this thread touches the driver no more, so the driver
  // may be destroyed as soon as its last offloaded operation is back.
  std::lock_guard<std::mutex> lock(d->returned_mutex_);
  d->returned_.push(op);
  if (!d->returned_flag_.exchange(true, std::memory_order_release))
    d->poller_.wake();
}

template <typename Poller>
void driver<Poller>::collect_returned() noexcept
{
  if (!returned_flag_.load(std::memory_order_acquire))
    return;
  op_queue got;
  {
    std::lock_guard<std::mutex> lock(returned_mutex_);
    got.push(returned_);
    returned_flag_.store(false, std::memory_order_relaxed);
  }
  while (operation* o = got.pop())
  {
    --offloaded_;
    complete(static_cast<io_operation*>(o));
  }
}

template <typename Poller>
void driver<Poller>::cancel_internal(io_operation* op) noexcept
{
  // Owner thread: find it where it waits, complete it as cancelled.
  if (unlink_waiting(op))
  {
    op->result_ = -ECANCELED;
    complete(op);
  }
}

template <typename Poller>
bool driver<Poller>::submit()
{
  std::size_t n = 0;
  while (operation* o = pending_.pop())
  {
    --pending_count_;
    ++n;
    issue(static_cast<io_operation*>(o));
  }
  runner_.submissions_.add(n);
  return true;
}

template <typename Poller>
void driver<Poller>::run_queue(fd_slot& s, direction d, const event& ev) noexcept
{
  op_queue& q = s.ops[d];
  while (operation* front = q.front())
  {
    auto* op = static_cast<io_operation*>(front);
    if (!perform(op, &ev, &s))
      return;
    q.pop();
    --waiting_;
    complete(op);
  }
}

template <typename Poller>
void driver<Poller>::wait_and_dispatch(std::int64_t timeout_ns)
{
  std::uint64_t syscalls = 0;
  int n = poller_.wait(events_.get(), max_events_, timeout_ns, syscalls);
  runner_.kernel_entries_.add(syscalls);
  if (poller_.take_woke())
    runner_.wakeups_.add();
  if (n < 0)
  {
    if (n == -EINTR)
      return;
    throw_errno(-n, "zokio: waiting for readiness");
  }
  for (int i = 0; i < n; ++i)
  {
    const event& ev = events_[i];
    std::size_t fd = static_cast<std::uint32_t>(ev.tag);
    std::uint32_t generation = static_cast<std::uint32_t>(ev.tag >> 32);
    if (fd >= slots_.size())
      continue;
    fd_slot& s = slots_[fd];
    if (s.generation != generation)
      continue;  // an older registration of a reused number
    if (ev.error != 0)
      s.error = ev.error;
    if (ev.hangup)
      s.hung_up = true;
    if (ev.readable)
    {
      s.readable = true;
      run_queue(s, dir_read, ev);
    }
    if (ev.writable)
      run_queue(s, dir_write, ev);
    if (ev.priority || ev.readable)
      run_queue(s, dir_except, ev);
  }
  if constexpr (Poller::drops_when_full)
    if (poller_.last_was_full())
      retry_all_waiting();
}

template <typename Poller>
void driver<Poller>::forked(io_operation* const* steps, std::size_t n, op_queue&)
{
  for (std::size_t i = 0; i < n; ++i)
    if (io_operation* step = steps[i]; step && step->runner_ == &runner_ && unlink_waiting(step))
    {
      step->result_ = -ECANCELED;
      complete(step);
    }
  poller_.reopen_after_fork();
  for (std::size_t fd = 0; fd < slots_.size(); ++fd)
  {
    fd_slot& s = slots_[fd];
    if (!s.registered)
      continue;
    s.registered = false;
    if (s.ops[dir_read].empty() && s.ops[dir_write].empty() && s.ops[dir_except].empty())
      continue;  // registered again by its next operation
    const std::uint64_t tag = (std::uint64_t(s.generation) << 32) | static_cast<std::uint32_t>(fd);
    int err = poller_.add(static_cast<int>(fd), tag);
    runner_.kernel_entries_.add();
    if (err == 0)
    {
      s.registered = true;
      continue;
    }
    for (op_queue& q : s.ops)
      while (operation* o = q.pop())
      {
        auto* op = static_cast<io_operation*>(o);
        --waiting_;
        op->result_ = -err;
        complete(op);
      }
  }
  retry_all_waiting();
}

template <typename Poller>
std::size_t driver<Poller>::evacuate(op_queue& out) noexcept
{
  try
  {
    submit();  // cancels among them find their targets
  }
  catch (...)
  {
    // (issue reports its own failures in the operations; nothing else is
    // expected to throw.) What is still pending stays, counted below.
  }
  for (fd_slot& s : slots_)
    for (op_queue& q : s.ops)
    {
      op_queue internal;
      while (operation* o = q.pop())
      {
        auto* op = static_cast<io_operation*>(o);
        if (op->internal_)
        {
          internal.push(op);
          continue;
        }
        --waiting_;
        op->result_ = -ECANCELED;
        complete(op);
      }
      q.push(internal);
    }
  reap(out);  // (internal steps done go to internal_ready_, as io_uring's evacuate does)
  return waiting_ + pending_count_ + offloaded_;
}

template <typename Poller>
void driver<Poller>::retry_all_waiting() noexcept
{
  // Every waiting operation tries again, as if its descriptor were ready
  // (a readiness wait checks with poll()): O(descriptors), only after a full
  // list from a poller that drops what did not fit. A dropped event may also
  // have been meant for a descriptor with nothing waiting yet: every slot
  // forgets that it had nothing to read, so the next receive tries first.
  for (fd_slot& s : slots_)
  {
    s.readable = true;
    for (op_queue& q : s.ops)
    {
      while (operation* front = q.front())
      {
        auto* op = static_cast<io_operation*>(front);
        if (!perform(op, nullptr, &s))
          break;
        q.pop();
        --waiting_;
        complete(op);
      }
    }
  }
}

template <typename Poller>
std::size_t driver<Poller>::reap(op_queue& out) noexcept
{
  collect_returned();
  std::size_t n = done_count_;
  if (n == 0)
    return 0;
  while (operation* o = done_.pop())
  {
    auto* op = static_cast<io_operation*>(o);
    if (op->internal_)
      runner_.internal_ready_.push(op);
    else
      out.push(op);
  }
  done_count_ = 0;
  runner_.completions_.add(n);
  runner_.batches_.add();
  runner_.max_batch_.raise_to(n);
  return n;
}

template <typename Poller>
void driver<Poller>::sleep(std::int64_t timeout_ns)
{
  // What the last handlers started is performed first (as io_uring submits
  // and waits in one enter); if any of it completed, only poll.
  submit();
  collect_returned();
  if (!done_.empty())
    timeout_ns = 0;
  runner_.sleeps_.add();
  wait_and_dispatch(timeout_ns);
}

#if defined(ZOKIO_HAS_EPOLL)
template class driver<epoll_poller>;
#endif
#if defined(ZOKIO_HAS_KQUEUE)
template class driver<kqueue_poller>;
#endif

} // namespace readiness
} // namespace detail
} // namespace zokio
