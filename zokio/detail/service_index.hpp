// zokio/detail/service_index.hpp: where zokio::io_context finds the services
// whose constructor takes zokio::io_context& (io_context::service subclasses).
//
// Asio's own registry creates a service through use_service<S>(execution_context&)
// only if S can be constructed from an execution_context&; for the others
// (as boost::asio::io_context does for its own services) zokio constructs
// them and registers them with add_service, and this index maps each one's
// key (the address of S::id) to the instance, so use_service finds it
// again, including one a user registered with add_service.
//
// The index is itself a service, registered before every other one: Asio
// shuts services down and destroys them newest first, so it outlives them
// all and a service may still call use_service from its shutdown() or
// destructor, as on Asio's io_context.
#ifndef ZOKIO_DETAIL_SERVICE_INDEX_HPP
#define ZOKIO_DETAIL_SERVICE_INDEX_HPP

#include <boost/asio/execution_context.hpp>

#include <map>
#include <mutex>

namespace zokio {
namespace detail {

class service_index
  : public boost::asio::detail::execution_context_service_base<service_index>
{
public:
  explicit service_index(boost::asio::execution_context& ctx)
    : boost::asio::detail::execution_context_service_base<service_index>(ctx)
  {
  }

  void shutdown() override {}

  // The instance registered under key, or null. Under the caller's lock.
  boost::asio::execution_context::service* find(const void* key) const
  {
    auto it = services_.find(key);
    return it == services_.end() ? nullptr : it->second;
  }

  void record(const void* key, boost::asio::execution_context::service* s)
  {
    services_.emplace(key, s);
  }

  // Serialises lookups with creation and registration (any thread).
  std::mutex& mutex() noexcept { return mutex_; }

private:
  std::mutex mutex_;
  std::map<const void*, boost::asio::execution_context::service*> services_;
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_SERVICE_INDEX_HPP
