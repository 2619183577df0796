// libs/detail/backend_select.hpp: the process's backend, for the library's
// own sources (users see zokio/backend.hpp).
#ifndef ZOKIO_LIBS_DETAIL_BACKEND_SELECT_HPP
#define ZOKIO_LIBS_DETAIL_BACKEND_SELECT_HPP

#include <zokio/backend.hpp>

#include <atomic>

namespace zokio {
namespace detail {

// -1 until the choice is made, then the backend's value. Written once (under
// the choice's once-flag), read relaxed: the choice publishes no other data
// that a reader of this value needs.
extern std::atomic<int> chosen_backend;

// The process's backend, choosing it on first call (current_backend()).
inline backend process_backend()
{
  int b = chosen_backend.load(std::memory_order_relaxed);
  return b >= 0 ? static_cast<backend>(b) : current_backend().backend;
}

// True when the backend waits for readiness and makes the system calls itself
// (epoll, kqueue): descriptors must then be non-blocking. Only after a choice
// (a context exists whenever a socket does).
inline bool backend_is_readiness() noexcept
{
  int b = chosen_backend.load(std::memory_order_relaxed);
  return b > 0 && static_cast<backend>(b) != backend::io_uring;
}

// Tests only: forgets the choice, so that the next context chooses again (a
// forked test child that has just installed a seccomp filter). Call with no
// context alive in the calling process.
void forget_backend_choice() noexcept;

} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_BACKEND_SELECT_HPP
