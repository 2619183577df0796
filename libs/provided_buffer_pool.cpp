// libs/provided_buffer_pool.cpp: buffer storage, the kernel's buffer ring,
// and the free list of the fallback.
//
// Where a buffer is at any time (each id in exactly one place):
//   - in the kernel's ring (kernel mode): the kernel may pick it;
//   - in returned_ (the stack): released, not yet in the ring (kernel mode,
//     released off the home thread), or free (fallback mode);
//   - held by a receive operation (fallback: taken when submitted) or by a
//     provided_buffer (after a completion).
// Only the home runner's thread adds to the ring (a single producer, as the
// ring requires) and pops from the stack; any thread pushes onto the stack.
#include <zokio/provided_buffer_pool.hpp>

#include <zokio/detail/sched/runner.hpp>
#include <zokio/detail/socket/receive_loop.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include "detail/uring/driver.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <new>

#include <sys/mman.h>

namespace zokio {
namespace {

// Buffer group ids, process-wide so that pools bound to the same ring differ
// (a ring accepts 65536 groups; a clash makes bind() try the next id).
std::atomic<std::uint16_t> next_group{1};

// Buffer ids travel in 16 bits of the CQE flags (IORING_CQE_BUFFER_SHIFT),
// and the ring holds at most 32768 entries.
constexpr std::size_t max_buffers = 32768;

void* map_anonymous(std::size_t bytes)
{
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

} // namespace

provided_buffer_pool::provided_buffer_pool(detail::scheduler& s, std::size_t buffer_size,
    std::size_t count)
  : scheduler_(s), buffer_size_(buffer_size), count_(count)
{
  if (buffer_size == 0 || buffer_size > (std::size_t(1) << 31) || count == 0
      || count > max_buffers)
    throw boost::system::system_error(boost::asio::error::invalid_argument,
        "zokio::provided_buffer_pool");
  data_bytes_ = buffer_size * count;
  // Anonymous pages: a buffer costs memory only once data has been received
  // into it.
  data_ = static_cast<char*>(map_anonymous(data_bytes_));
  if (data_ == nullptr)
    throw boost::system::system_error(boost::asio::error::no_memory,
        "zokio::provided_buffer_pool: mmap");
  try
  {
    // Plain new[] (not the nothrow form): programs that replace the global
    // allocation functions often replace only the ordinary ones.
    next_ = new std::atomic<std::uint32_t>[count];
    lengths_ = new std::uint32_t[count];
  }
  catch (const std::bad_alloc&)
  {
    delete[] next_;
    ::munmap(data_, data_bytes_);
    throw boost::system::system_error(boost::asio::error::no_memory,
        "zokio::provided_buffer_pool");
  }
  // Every buffer starts free on the stack, lowest id on top.
  for (std::size_t i = 0; i < count; ++i)
    next_[i].store(i + 1 < count ? std::uint32_t(i + 1) : nil, std::memory_order_relaxed);
  returned_.store(0, std::memory_order_relaxed);
}

provided_buffer_pool::~provided_buffer_pool()
{
  bool release_memory = true;
  if (ring_mode_)
  {
    // Unregistering must run on the home ring's thread
    // (IORING_SETUP_SINGLE_ISSUER). Elsewhere it may fail; the kernel then
    // keeps the group until the ring is closed, so the memory it names is
    // kept too rather than handed back while the kernel could use it.
    detail::runner* home = home_.load(std::memory_order_acquire);
    if (::io_uring_unregister_buf_ring(home->uring_driver().get(), group_) != 0)
      release_memory = false;
  }
  if (release_memory)
  {
    if (ring_)
      ::munmap(ring_, ring_bytes_);
    ::munmap(data_, data_bytes_);
  }
  delete[] next_;
  delete[] lengths_;
}

detail::runner* provided_buffer_pool::bind(detail::runner* here) noexcept
{
  std::lock_guard<std::mutex> lock(bind_mutex_);
  if (detail::runner* home = home_.load(std::memory_order_relaxed))
    return home;

  if (detail::uring::features().buffer_ring)
  {
    unsigned entries = 1;
    while (entries < count_)
      entries <<= 1;
    std::size_t bytes = entries * sizeof(::io_uring_buf);
    void* mem = map_anonymous(bytes);
    if (mem != nullptr)
    {
      ::io_uring_buf_reg reg;
      std::memset(&reg, 0, sizeof(reg));
      reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
      reg.ring_entries = entries;
      int r = -EEXIST;
      for (int attempt = 0; attempt < 16 && r == -EEXIST; ++attempt)
      {
        reg.bgid = next_group.fetch_add(1, std::memory_order_relaxed);
        r = ::io_uring_register_buf_ring(here->uring_driver().get(), &reg, 0);
      }
      if (r == 0)
      {
        ring_ = static_cast<::io_uring_buf_ring*>(mem);
        ring_bytes_ = bytes;
        ring_entries_ = entries;
        group_ = reg.bgid;
        ::io_uring_buf_ring_init(ring_);
        ring_mode_ = true;
      }
      else
      {
        // Refused (memory, limits): the fallback serves.
        ::munmap(mem, bytes);
      }
    }
  }
  home_.store(here, std::memory_order_release);
  if (ring_mode_)
    drain_returned();  // every free buffer into the ring
  return here;
}

void provided_buffer_pool::add_to_ring(std::uint32_t id) noexcept
{
  ::io_uring_buf_ring_add(ring_, data_of(id), static_cast<unsigned>(buffer_size_),
      static_cast<unsigned short>(id), ::io_uring_buf_ring_mask(ring_entries_), 0);
}

void provided_buffer_pool::drain_returned() noexcept
{
  // Acquire: the pushers' writes of next_ happen before their CAS.
  std::uint32_t id = returned_.exchange(nil, std::memory_order_acquire);
  int n = 0;
  int offset = 0;
  while (id != nil)
  {
    ::io_uring_buf_ring_add(ring_, data_of(id), static_cast<unsigned>(buffer_size_),
        static_cast<unsigned short>(id), ::io_uring_buf_ring_mask(ring_entries_), offset++);
    ++n;
    id = next_[id].load(std::memory_order_relaxed);
  }
  if (n)
    ::io_uring_buf_ring_advance(ring_, n);  // release store of the tail
}

void provided_buffer_pool::push_returned(std::uint32_t id) noexcept
{
  std::uint32_t head = returned_.load(std::memory_order_relaxed);
  do
    next_[id].store(head, std::memory_order_relaxed);
  while (!returned_.compare_exchange_weak(head, id, std::memory_order_release,
      std::memory_order_relaxed));
}

std::uint32_t provided_buffer_pool::take() noexcept
{
  // Single consumer (the home thread): the top cannot be popped and pushed
  // back by anyone else between the load and the CAS.
  std::uint32_t head = returned_.load(std::memory_order_acquire);
  while (head != nil)
  {
    std::uint32_t next = next_[head].load(std::memory_order_relaxed);
    if (returned_.compare_exchange_weak(head, next, std::memory_order_acquire,
        std::memory_order_acquire))
      return head;
  }
  return nil;
}

void provided_buffer_pool::give_back(std::uint32_t id) noexcept
{
  detail::runner* home = home_.load(std::memory_order_acquire);
  if (home != nullptr && ring_mode_ && scheduler_.this_thread_runner() == home)
  {
    // The home thread is the ring's only producer: straight back to the kernel.
    add_to_ring(id);
    ::io_uring_buf_ring_advance(ring_, 1);
  }
  else
  {
    push_returned(id);
  }
  // After the buffer is available (see waiting_).
  returns_.fetch_add(1, std::memory_order_seq_cst);
  if (waiting_.load(std::memory_order_seq_cst))
    wake_one();
}

bool provided_buffer_pool::park(detail::receive_loop_base* l, std::uint32_t epoch) noexcept
{
  {
    std::lock_guard<std::mutex> lock(wait_mutex_);
    detail::receive_loop_base::set_wait_next(l, waiters_);
    waiters_ = l;
    waiting_.store(true, std::memory_order_seq_cst);
  }
  if (returns_.load(std::memory_order_seq_cst) == epoch)
    return true;
  // A buffer came back since the loop's request was made: it tries again
  // (unless a give_back has resumed it meanwhile, which is the same).
  return !unpark(l);
}

bool provided_buffer_pool::unpark(detail::receive_loop_base* l) noexcept
{
  std::lock_guard<std::mutex> lock(wait_mutex_);
  using loop = detail::receive_loop_base;
  loop* prev = nullptr;
  for (loop* p = waiters_; p; prev = p, p = loop::wait_next(p))
  {
    if (p == l)
    {
      if (prev)
        loop::set_wait_next(prev, loop::wait_next(l));
      else
        waiters_ = loop::wait_next(l);
      if (waiters_ == nullptr)
        waiting_.store(false, std::memory_order_seq_cst);
      return true;
    }
  }
  return false;
}

void provided_buffer_pool::wake_one() noexcept
{
  std::lock_guard<std::mutex> lock(wait_mutex_);
  detail::receive_loop_base* l = waiters_;
  if (l == nullptr)
  {
    waiting_.store(false, std::memory_order_seq_cst);
    return;
  }
  waiters_ = detail::receive_loop_base::wait_next(l);
  if (waiters_ == nullptr)
    waiting_.store(false, std::memory_order_seq_cst);
  detail::receive_loop_base::resume(l);  // under the mutex: see unpark
}

} // namespace zokio
