// libs/io_context.cpp: non-template members of zokio::io_context.
#include <zokio/io_context.hpp>
#include <zokio/detail/asio_bridge.hpp>

#include <boost/asio/detail/concurrency_hint.hpp>

namespace zokio {

detail::scheduler& io_context::add_impl(io_context& self, int hint, const ring_options& rings)
{
  return detail::install_scheduler(self, hint, rings, detail::scheduler::context_kind::io_context);
}

io_context::io_context()
  : services_(boost::asio::use_service<detail::service_index>(*this)),
    impl_(add_impl(*this, BOOST_ASIO_CONCURRENCY_HINT_DEFAULT, ring_options{}))
{
}

io_context::io_context(int concurrency_hint)
  : services_(boost::asio::use_service<detail::service_index>(*this)),
    impl_(add_impl(*this, concurrency_hint == 1 ? BOOST_ASIO_CONCURRENCY_HINT_1 : concurrency_hint,
        ring_options{}))
{
}

io_context::io_context(int concurrency_hint, const ring_options& rings)
  : services_(boost::asio::use_service<detail::service_index>(*this)),
    impl_(add_impl(*this, concurrency_hint == 1 ? BOOST_ASIO_CONCURRENCY_HINT_1 : concurrency_hint,
        rings))
{
}

// Services are shut down and destroyed by execution_context's destructor,
// once each, newest first, as on boost::asio::io_context (whose destructor
// is empty too).
io_context::~io_context() = default;

io_context::count_type io_context::run() { return impl_.run(); }
io_context::count_type io_context::run_one() { return impl_.run_one(); }
io_context::count_type io_context::poll() { return impl_.poll(); }
io_context::count_type io_context::poll_one() { return impl_.poll_one(); }
void io_context::stop() { impl_.stop(); }
bool io_context::stopped() const { return impl_.stopped(); }
void io_context::restart() { impl_.restart(); }
int io_context::concurrency_hint() const noexcept { return impl_.concurrency_hint(); }
zokio::statistics io_context::statistics() const { return impl_.statistics(); }

#if !defined(BOOST_ASIO_NO_DEPRECATED)
io_context::count_type io_context::run(boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  return impl_.run();
}

io_context::count_type io_context::run_one(boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  return impl_.run_one();
}

io_context::count_type io_context::poll(boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  return impl_.poll();
}

io_context::count_type io_context::poll_one(boost::system::error_code& ec)
{
  ec = boost::system::error_code();
  return impl_.poll_one();
}

void io_context::reset() { restart(); }
#endif // !defined(BOOST_ASIO_NO_DEPRECATED)

io_context::service::service(io_context& owner)
  : boost::asio::execution_context::service(owner)
{
}

io_context::service::~service() = default;

void io_context::service::shutdown()
{
#if !defined(BOOST_ASIO_NO_DEPRECATED)
  shutdown_service();
#endif
}

#if !defined(BOOST_ASIO_NO_DEPRECATED)
void io_context::service::shutdown_service() {}
#endif

void io_context::service::notify_fork(boost::asio::execution_context::fork_event event)
{
#if !defined(BOOST_ASIO_NO_DEPRECATED)
  fork_service(event);
#else
  (void)event;
#endif
}

#if !defined(BOOST_ASIO_NO_DEPRECATED)
void io_context::service::fork_service(boost::asio::execution_context::fork_event) {}
#endif

} // namespace zokio
