// test/support/live_blocks.hpp: the program's live heap blocks, counted by
// replacing the global operator new and delete. Include it in exactly one
// source of a test executable (it defines the replacements). The aligned
// forms are not replaced: they go to aligned_alloc and free, outside the
// count on both sides.
#ifndef ZOKIO_TEST_SUPPORT_LIVE_BLOCKS_HPP
#define ZOKIO_TEST_SUPPORT_LIVE_BLOCKS_HPP

#include <atomic>
#include <cstdlib>
#include <new>

namespace zokio_test {
inline std::atomic<long> live_blocks{0};
} // namespace zokio_test

void* operator new(std::size_t n)
{
  void* p = std::malloc(n ? n : 1);
  if (!p)
    throw std::bad_alloc();
  zokio_test::live_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept
{
  void* p = std::malloc(n ? n : 1);
  if (p)
    zokio_test::live_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void operator delete(void* p) noexcept
{
  if (p)
    zokio_test::live_blocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }

#endif // ZOKIO_TEST_SUPPORT_LIVE_BLOCKS_HPP
