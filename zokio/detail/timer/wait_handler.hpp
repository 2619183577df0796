// zokio/detail/timer/wait_handler.hpp: a timer wait bound to its handler.
#ifndef ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP
#define ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP

#include <zokio/detail/handler_alloc.hpp>
#include <zokio/detail/handler_work.hpp>
#include <zokio/detail/timer/wait_op.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/detail/bind_handler.hpp>

#include <utility>

namespace zokio {
namespace detail {

template <typename Handler, typename IoExecutor>
class wait_handler final : public wait_op
{
public:
  using allocator_type = op_allocator_t<boost::asio::associated_allocator_t<Handler>>;

  // Allocates the operation with the handler's allocator.
  template <typename H>
  static wait_handler* create(H&& handler, const IoExecutor& io_ex, scheduler& owner)
  {
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler));
    op_ptr<wait_handler, allocator_type> p(alloc);
    p.construct(std::forward<H>(handler), io_ex, owner);
    return p.release();
  }

  template <typename H>
  wait_handler(H&& handler, const IoExecutor& io_ex, scheduler& owner)
    : wait_op(&do_complete),
      handler_(std::forward<H>(handler)),
      work_(handler_, io_ex, owner)
  {
  }

  // Destroys and frees an operation that was never queued (initiation failed).
  void discard() noexcept
  {
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(handler_));
    op_ptr<wait_handler, allocator_type> p(alloc, this);
  }

private:
  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<wait_handler*>(base);
    allocator_type alloc = op_allocator<boost::asio::associated_allocator_t<Handler>>::get(
        boost::asio::get_associated_allocator(o->handler_));
    op_ptr<wait_handler, allocator_type> p(alloc, o);

    // Move what the upcall needs out of the operation, then free its memory
    // before invoking, so the handler may reuse it for its next wait.
    handler_work<Handler, IoExecutor> work(std::move(o->work_));
    boost::asio::detail::binder1<Handler, boost::system::error_code> bound(
        0, std::move(o->handler_), o->ec_);
    p.reset();

    if (owner)
      work.complete(bound, bound.handler_);
  }

  Handler handler_;
  handler_work<Handler, IoExecutor> work_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_WAIT_HANDLER_HPP
