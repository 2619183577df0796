// zokio/detail/config.hpp: the few compile-time switches of the library.
#ifndef ZOKIO_DETAIL_CONFIG_HPP
#define ZOKIO_DETAIL_CONFIG_HPP

#include <boost/asio/detail/config.hpp>

// Backends compiled in (chosen among at run time: zokio/backend.hpp).
// io_uring and epoll on Linux; kqueue on the BSDs and macOS, and on Linux
// when built against libkqueue (ZOKIO_HAS_KQUEUE from the build: CMake's
// ZOKIO_LIBKQUEUE).
#if defined(__linux__)
# define ZOKIO_HAS_IO_URING 1
# define ZOKIO_HAS_EPOLL 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) \
    || defined(__OpenBSD__) || defined(__DragonFly__)
# if !defined(ZOKIO_HAS_KQUEUE)
#  define ZOKIO_HAS_KQUEUE 1
# endif
#else
# error "zokio: no backend for this system (io_uring and epoll need Linux, kqueue a BSD or macOS)"
#endif

// ZOKIO_STRESS_CAPACITIES shrinks internal capacities (batch sizes, ring
// sizes) so stress tests reach the edges of every bounded structure.
#if defined(ZOKIO_STRESS_CAPACITIES)
# define ZOKIO_CAPACITY(normal, stressed) (stressed)
#else
# define ZOKIO_CAPACITY(normal, stressed) (normal)
#endif

namespace zokio {
namespace detail {

// One pause of a spinning thread: tells the processor that this is a wait
// loop (saves power, lets a sibling hyperthread run). Nothing elsewhere.
inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_CONFIG_HPP
