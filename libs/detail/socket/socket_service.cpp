// libs/detail/socket/socket_service.cpp: socket states, open/close/cancel.
#include <zokio/detail/socket/socket_service.hpp>
#include <zokio/detail/uring/accept_engine.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include "detail/backend_select.hpp"

#include <boost/asio/error.hpp>

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zokio {
namespace detail {
namespace {

namespace socket_ops = boost::asio::detail::socket_ops;

boost::system::error_code errno_code(int err)
{
  return boost::system::error_code(err, boost::asio::error::get_system_category());
}

// Generations of socket states (socket_state::generation_), process-wide
// so that two services' states never share one; never 0.
std::atomic<std::uint32_t> next_generation{1};

std::uint32_t new_generation() noexcept
{
  std::uint32_t g = next_generation.fetch_add(1, std::memory_order_relaxed);
  return g != 0 ? g : next_generation.fetch_add(1, std::memory_order_relaxed);
}

// Dispatches the cancel steps collected under a socket's lock.
void dispatch_all(scheduler& s, op_queue& steps) noexcept
{
  while (operation* step = steps.pop())
    socket_op::dispatch_cancel(s, static_cast<io_operation*>(step));
}

} // namespace

socket_service::socket_service(boost::asio::execution_context& ctx)
  : boost::asio::detail::execution_context_service_base<socket_service>(ctx),
    scheduler_(boost::asio::use_service<scheduler>(ctx))
{
}

socket_service::~socket_service()
{
  // Accept engines whose requests were never reaped (their runner's thread
  // was still alive at shutdown): the kernel writes nothing into them, and
  // nobody reaps after this; free what they hold.
  for (auto& slab : slabs_)
    for (std::size_t i = 0; i < slab_size; ++i)
      if (accept_engine* e = slab[i].accept_)
      {
        e->abandon();
        slab[i].accept_ = nullptr;
        delete e;
      }
}

void socket_service::shutdown()
{
}

void socket_service::for_each_held(runner& r, scheduler::held_visitor f, void* arg) noexcept
{
  // pool_mutex_ keeps slabs_ still; a state's lock keeps its list and each
  // operation's home_ still.
  std::lock_guard<std::mutex> pool_lock(pool_mutex_);
  for (auto& slab : slabs_)
    for (std::size_t i = 0; i < slab_size; ++i)
    {
      socket_state& st = slab[i];
      if (!st.in_use_)
        continue;
      st.lock_.lock();
      for (socket_op* o = st.ops_; o; o = o->link_next_)
        if (o->home_ == &r && !o->parked_)
          f(o, arg);
      st.lock_.unlock();
    }
}

void socket_service::for_each_receive_loop(runner& r, scheduler::loop_visitor f,
    void* arg) noexcept
{
  std::lock_guard<std::mutex> pool_lock(pool_mutex_);
  for (auto& slab : slabs_)
    for (std::size_t i = 0; i < slab_size; ++i)
    {
      socket_state& st = slab[i];
      if (!st.in_use_)
        continue;
      st.lock_.lock();
      if (st.recv_loop_ && st.recv_loop_->armed_on(r))
        f(st.recv_loop_, arg);
      st.lock_.unlock();
    }
}

socket_state* socket_service::allocate_state()
{
  std::lock_guard<std::mutex> lock(pool_mutex_);
  if (free_ == nullptr)
  {
    std::unique_ptr<socket_state[]> slab(new socket_state[slab_size]);
    for (std::size_t i = 0; i < slab_size; ++i)
    {
      slab[i].service_ = this;
      slab[i].next_free_ = free_;
      free_ = &slab[i];
    }
    slabs_.push_back(std::move(slab));
  }
  socket_state* st = free_;
  free_ = st->next_free_;
  // The union of next_free_ and recv_loop_ is touched under the state's
  // lock too (a loop that outlived its socket may read it, socket_state.hpp).
  st->lock_.lock();
  st->recv_loop_ = nullptr;
  st->lock_.unlock();
  st->in_use_ = true;
  return st;
}

bool socket_service::driver_makes(io_request::kind_type k) const noexcept
{
  if (scheduler_.backend() != zokio::backend::io_uring)
    return true;  // the blocking pool
  const uring::net_features& f = uring::features();
  switch (k)
  {
  case io_request::openat:
    return f.openat;
  case io_request::statx:
    return f.statx;
  case io_request::ftruncate:
    return f.ftruncate;
  default:
    return true;
  }
}

socket_state* socket_service::request_state() noexcept
{
  socket_state* st;
  try
  {
    st = allocate_state();
  }
  catch (const std::bad_alloc&)
  {
    return nullptr;
  }
  st->fd_ = -1;
  st->generation_ = new_generation();
  st->flags_ = 0;
  st->io_hints_ = io_request::blocking;
  st->close_on_drain_ = false;
  st->lock_.lock();
  st->open_ = false;  // no object holds it: reclaimed once its operation is done
  st->ops_ = nullptr;
  st->lock_.unlock();
  return st;
}

void socket_service::reclaim_unopened(socket_state* st) noexcept
{
  st->fd_ = -1;
  st->flags_ = 0;
  std::lock_guard<std::mutex> lock(pool_mutex_);
  st->in_use_ = false;
  st->lock_.lock();
  st->next_free_ = free_;
  st->lock_.unlock();
  free_ = st;
}

void socket_service::reclaim(socket_state* st) noexcept
{
  // A loop that ends after this finds the entry gone (receive_loop_base::end).
  st->lock_.lock();
  st->recv_loop_ = nullptr;
  st->lock_.unlock();
  if (accept_engine* e = st->accept_)
  {
    st->accept_ = nullptr;
    delete e;
  }
  if (st->fd_ >= 0)
    scheduler_.descriptor_closing(st->fd_);
  if (st->close_on_drain_ && st->fd_ >= 0)
  {
    boost::system::error_code ignored;
    socket_ops::close(st->fd_, st->flags_, true, ignored);
  }
  st->fd_ = -1;
  st->flags_ = 0;
  st->io_hints_ = 0;
  st->close_on_drain_ = true;
  std::lock_guard<std::mutex> lock(pool_mutex_);
  st->in_use_ = false;
  st->lock_.lock();
  st->next_free_ = free_;
  st->lock_.unlock();
  free_ = st;
}

int socket_service::make_non_blocking(socket_state& st) noexcept
{
  if (st.flags_ & (socket_ops::user_set_non_blocking | socket_ops::internal_non_blocking))
    return 0;
  boost::system::error_code ec;
  if (socket_ops::set_internal_non_blocking(st.fd_, st.flags_, true, ec))
    return 0;
  return ec.value() ? ec.value() : EBADF;
}

socket_state* socket_service::open(int family, int type, int protocol,
    boost::system::error_code& ec)
{
#if defined(SOCK_CLOEXEC)
  int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
#else
  int fd = ::socket(family, type, protocol);
  if (fd >= 0)
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (fd < 0)
  {
    ec = errno_code(errno);
    return nullptr;
  }
  socket_state* st = assign(fd, type == SOCK_STREAM, ec);
  if (st == nullptr)
    ::close(fd);
  return st;
}

socket_state* socket_service::assign(int fd, bool stream, boost::system::error_code& ec,
    std::uint8_t io_hints)
{
  socket_state* st;
  try
  {
    st = allocate_state();
  }
  catch (const std::bad_alloc&)
  {
    ec = boost::asio::error::no_memory;
    return nullptr;
  }
  st->fd_ = fd;
  st->generation_ = new_generation();
  st->flags_ = stream ? socket_ops::stream_oriented : socket_ops::datagram_oriented;
  st->io_hints_ = io_hints;
  if (backend_is_readiness() && !(io_hints & io_request::blocking))
  {
    // A readiness driver makes the system call itself and waits only when
    // it would block, so the descriptor must not block (as Asio's reactor
    // makes it on its first asynchronous operation). Asio's synchronous
    // calls see internal_non_blocking and wait with poll() instead.
    socket_ops::set_internal_non_blocking(fd, st->flags_, true, ec);
    if (ec)
    {
      reclaim_unopened(st);
      return nullptr;
    }
  }
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  // No MSG_NOSIGNAL (macOS): a send on a reset connection must not raise
  // SIGPIPE either.
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#endif
  st->close_on_drain_ = true;
  st->recv_drained_.store(false, std::memory_order_relaxed);
  // A file opened for direct I/O would wait for the device in a
  // page-cache read attempt: never tried there.
  bool direct = false;
#if defined(O_DIRECT)
  if (io_hints & io_request::blocking)
  {
    const int fl = ::fcntl(fd, F_GETFL);
    direct = fl >= 0 && (fl & O_DIRECT);
  }
#endif
  st->no_cached_reads_.store(direct, std::memory_order_relaxed);
  st->lock_.lock();
  st->open_ = true;
  st->ops_ = nullptr;
  st->recv_loop_ = nullptr;
  st->lock_.unlock();
  ec = boost::system::error_code();
  return st;
}

void socket_service::close(socket_state*& st, boost::system::error_code& ec,
    bool destruction) noexcept
{
  ec = boost::system::error_code();
  socket_state* s = st;
  if (s == nullptr)
    return;
  st = nullptr;

  op_queue steps;
  multishot_operation* stop = nullptr;
  receive_loop_base* loop_to_stop = nullptr;
  s->lock_.lock();
  s->open_ = false;
  if (s->recv_loop_ && s->recv_loop_->mark_stop())
    loop_to_stop = s->recv_loop_;
  for (socket_op* o = s->ops_; o; o = o->link_next_)
    if (io_operation* step = o->request_cancel())
      steps.push(step);
  if (s->accept_)
    stop = s->accept_->request_stop();
  bool drained = s->ops_ == nullptr && !(s->accept_ && s->accept_->busy())
    && !(s->recv_loop_ && s->recv_loop_->holds_request());
  s->lock_.unlock();
  dispatch_all(scheduler_, steps);
  if (stop)
    accept_engine::dispatch_stop(scheduler_, stop);
  if (loop_to_stop)
    loop_to_stop->dispatch_stop();

  if (drained)
  {
    // Nothing in flight: close now, and report what close() says.
    scheduler_.descriptor_closing(s->fd_);
    if (s->close_on_drain_)
      socket_ops::close(s->fd_, s->flags_, destruction, ec);
    s->close_on_drain_ = false;
    // The number may be another socket's from here on (an accept on
    // another thread): reclaim must not tell the pollers about it again
    // (on libkqueue that removed the new socket's registration from a
    // runner's kqueue, and its read waited for ever: test/churn.cpp).
    s->fd_ = -1;
    reclaim(s);
  }
}

int socket_service::release(socket_state*& st, boost::system::error_code& ec) noexcept
{
  ec = boost::system::error_code();
  if (st == nullptr)
  {
    ec = boost::asio::error::bad_descriptor;
    return -1;
  }
  int fd = st->fd_;
  st->close_on_drain_ = false;
  close(st, ec);
  return fd;
}

void socket_service::cancel(socket_state* st) noexcept
{
  if (st == nullptr)
    return;
  op_queue steps;
  receive_loop_base* loop_to_stop = nullptr;
  st->lock_.lock();
  if (st->recv_loop_ && st->recv_loop_->mark_stop())
    loop_to_stop = st->recv_loop_;
  for (socket_op* o = st->ops_; o; o = o->link_next_)
    if (io_operation* step = o->request_cancel())
      steps.push(step);
  st->lock_.unlock();
  dispatch_all(scheduler_, steps);
  if (loop_to_stop)
    loop_to_stop->dispatch_stop();
}

void socket_service::cancel_receive_loop(socket_state& st, receive_loop_base* key) noexcept
{
  op_queue steps;
  bool dispatch = false;
  st.lock_.lock();
  if (st.recv_loop_ == key)
  {
    dispatch = key->mark_stop();
    // The loop's receive carries the loop's address as its key.
    for (socket_op* o = st.ops_; o; o = o->link_next_)
      if (o->cancellation_key_ == key)
        if (io_operation* step = o->request_cancel())
          steps.push(step);
  }
  st.lock_.unlock();
  dispatch_all(scheduler_, steps);
  // (A loop marked for its home runner stays alive until that runner has
  // run it: mark_stop queued it.)
  if (dispatch)
    key->dispatch_stop();
}

void socket_service::cancel_by_key(socket_state& st, void* key) noexcept
{
  op_queue steps;
  st.lock_.lock();
  for (socket_op* o = st.ops_; o; o = o->link_next_)
  {
    if (o->cancellation_key_ == key)
    {
      if (io_operation* step = o->request_cancel())
        steps.push(step);
    }
  }
  st.lock_.unlock();
  dispatch_all(scheduler_, steps);
}

} // namespace detail
} // namespace zokio
