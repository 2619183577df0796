// zokio/detail/handler_alloc.hpp: memory for operation objects.
#ifndef ZOKIO_DETAIL_HANDLER_ALLOC_HPP
#define ZOKIO_DETAIL_HANDLER_ALLOC_HPP

#include <zokio/detail/config.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include <memory>
#include <type_traits>
#include <utility>

namespace zokio {
namespace detail {

// The allocator an operation uses: the handler's associated allocator, except
// that the default std::allocator becomes Asio's recycling allocator, which
// keeps a few freed blocks per thread (in the running thread's
// thread_info_base) so that steady-state operations never reach operator new.
template <typename Alloc>
struct op_allocator
{
  using type = Alloc;
  static type get(const Alloc& a) noexcept { return a; }
};

template <typename T>
struct op_allocator<std::allocator<T>>
{
  using type = boost::asio::recycling_allocator<void>;
  static type get(const std::allocator<T>&) noexcept { return type(); }
};

template <typename Alloc>
using op_allocator_t = typename op_allocator<Alloc>::type;

// Owns an operation's memory from allocation until the operation is either
// handed on (release) or destroyed and freed (reset, or the destructor when
// construction or initiation throws).
template <typename Op, typename Alloc>
class op_ptr
{
public:
  using allocator_type = typename std::allocator_traits<Alloc>::template rebind_alloc<Op>;

  explicit op_ptr(const Alloc& a) : alloc_(a), mem_(alloc_.allocate(1)) {}

  // Adopts a constructed operation, to destroy and free it.
  op_ptr(const Alloc& a, Op* op) noexcept : alloc_(a), mem_(op), constructed_(true) {}

  op_ptr(const op_ptr&) = delete;
  op_ptr& operator=(const op_ptr&) = delete;

  ~op_ptr() { reset(); }

  template <typename... Args>
  Op* construct(Args&&... args)
  {
    ::new (static_cast<void*>(mem_)) Op(std::forward<Args>(args)...);
    constructed_ = true;
    return mem_;
  }

  Op* get() const noexcept { return mem_; }

  Op* release() noexcept
  {
    Op* op = mem_;
    mem_ = nullptr;
    constructed_ = false;
    return op;
  }

  void reset() noexcept
  {
    if (mem_)
    {
      if (constructed_)
        mem_->~Op();
      alloc_.deallocate(mem_, 1);
      mem_ = nullptr;
      constructed_ = false;
    }
  }

private:
  allocator_type alloc_;
  Op* mem_;
  bool constructed_ = false;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_HANDLER_ALLOC_HPP
