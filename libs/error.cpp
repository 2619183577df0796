// libs/error.cpp: the zokio error category.
#include <zokio/error.hpp>

#include <string>

namespace zokio {
namespace error {
namespace {

class zokio_category final : public boost::system::error_category
{
public:
  const char* name() const noexcept override { return "zokio"; }

  std::string message(int value) const override
  {
    switch (static_cast<zokio_errors>(value))
    {
    case io_uring_unavailable:
      return "io_uring is unavailable on this system";
    case operation_not_supported:
      return "the running kernel does not support this io_uring operation";
    case not_a_zokio_executor:
      return "the executor does not belong to a zokio execution context";
    case would_deadlock:
      return "blocking here would deadlock: this thread runs the context";
    case backend_unavailable:
      return "the requested backend is not available";
    }
    return "zokio error";
  }
};

} // namespace

const boost::system::error_category& get_zokio_category() noexcept
{
  static const zokio_category instance;
  return instance;
}

} // namespace error
} // namespace zokio
