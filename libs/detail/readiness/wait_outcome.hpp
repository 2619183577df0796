// libs/detail/readiness/wait_outcome.hpp: what a poller's last wait saw
// besides descriptors' events, for the readiness driver (driver.hpp).
#ifndef ZOKIO_LIBS_DETAIL_READINESS_WAIT_OUTCOME_HPP
#define ZOKIO_LIBS_DETAIL_READINESS_WAIT_OUTCOME_HPP

namespace zokio {
namespace detail {
namespace readiness {

// Base of each poller; set by its wait(), read by the driver. Owner thread.
class wait_outcome
{
public:
  // Whether a wake-up ended the waits since the last call.
  bool take_woke() noexcept
  {
    bool w = woke_;
    woke_ = false;
    return w;
  }

  // The last wait filled the caller's list.
  bool last_was_full() const noexcept { return full_; }

protected:
  bool woke_ = false;
  bool full_ = false;
};

} // namespace readiness
} // namespace detail
} // namespace zokio

#endif // ZOKIO_LIBS_DETAIL_READINESS_WAIT_OUTCOME_HPP
