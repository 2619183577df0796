// zokio/detail/nop_op.hpp: IORING_OP_NOP (linux 5.1), a request the
// kernel completes at once. Used to exercise the submission path (full
// submission queue, completion-queue overflow) and to measure the ring's
// round trip.
#ifndef ZOKIO_DETAIL_NOP_OP_HPP
#define ZOKIO_DETAIL_NOP_OP_HPP

#include <zokio/detail/bound_handler.hpp>
#include <zokio/detail/sched/scheduler.hpp>
#include <zokio/detail/io_operation.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>

namespace zokio {
namespace detail {

template <typename Handler, typename IoExecutor>
class nop_op final : public io_operation
{
public:
  nop_op(Handler&& handler, const IoExecutor& io_ex, scheduler& owner)
    : io_operation(&do_start), handler_(std::move(handler), io_ex, owner)
  {
    req_.kind = io_request::nop;
  }

  // Starts the operation on the calling thread's driver, or hands it to a
  // thread that runs the scheduler (which then runs do_start).
  void start(scheduler& owner)
  {
    if (runner* r = owner.this_thread_runner())
    {
      set_func(&do_complete);
      r->work_started();
      r->start(this);
    }
    else
    {
      owner.work_started();
      owner.post_deferred(this);
    }
  }

private:
  template <typename, typename> friend class bound_handler;

  // First completion of an operation handed over from another thread: the
  // work unit it carries stays counted, since the operation goes on.
  static void do_start(scheduler* owner, operation* base)
  {
    auto* o = static_cast<nop_op*>(base);
    if (owner == nullptr)
      return do_complete(nullptr, base);
    runner* r = owner->this_thread_runner();
    o->set_func(&do_complete);
    r->work_started();
    r->start(o);
  }

  static void do_complete(scheduler* owner, operation* base)
  {
    auto* o = static_cast<nop_op*>(base);
    boost::system::error_code ec;
    if (o->result_ < 0)
      ec.assign(-o->result_, boost::asio::error::get_system_category());
    bound_handler<Handler, IoExecutor>::upcall(owner, o, ec);
  }

  bound_handler<Handler, IoExecutor> handler_;
};

// Starts a NOP on ex's context; completes with void(error_code).
template <typename Executor, typename Token>
auto async_nop(const Executor& ex, Token&& token)
{
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      [](auto handler, const Executor& ex) {
        scheduler& s = *scheduler_of(ex);
        using op_type = nop_op<decltype(handler), Executor>;
        bound_handler<decltype(handler), Executor>::template create_from<op_type>(
            std::move(handler), ex, s)->start(s);
      },
      token, ex);
}

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_NOP_OP_HPP
