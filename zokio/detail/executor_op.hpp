// zokio/detail/executor_op.hpp: a function submitted through an executor.
#ifndef ZOKIO_DETAIL_EXECUTOR_OP_HPP
#define ZOKIO_DETAIL_EXECUTOR_OP_HPP

#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/operation.hpp>

#include <utility>

namespace zokio {
namespace detail {

// Holds the function and the allocator that provided its memory. complete()
// moves the function out, frees the memory, then calls the function, so a
// function that posts its successor reuses the block it just released.
template <typename Function, typename Alloc>
class executor_op final : public operation
{
public:
  using allocator_type = op_allocator_t<Alloc>;

  template <typename F>
  static executor_op* create(F&& f, const Alloc& a)
  {
    allocator_type alloc = op_allocator<Alloc>::get(a);
    op_ptr<executor_op, allocator_type> p(alloc);
    p.construct(std::forward<F>(f), alloc);
    return p.release();
  }

  template <typename F>
  executor_op(F&& f, const allocator_type& a)
    : operation(&do_complete), function_(std::forward<F>(f)), alloc_(a)
  {
  }

private:
  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<executor_op*>(base);
    allocator_type alloc(o->alloc_);
    op_ptr<executor_op, allocator_type> p(alloc, o);
    Function function(std::move(o->function_));
    p.reset();
    if (owner)
      std::move(function)();
  }

  Function function_;
  [[no_unique_address]] allocator_type alloc_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_EXECUTOR_OP_HPP
