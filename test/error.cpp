// Tests of zokio's error category.
#include <zokio/error.hpp>

#define BOOST_TEST_MODULE error
#include <boost/test/unit_test.hpp>

#include <boost/asio/error.hpp>

BOOST_AUTO_TEST_CASE(zokio_errors_are_error_codes_with_messages)
{
  boost::system::error_code ec = zokio::error::not_a_zokio_executor;
  BOOST_TEST(ec.category().name() == std::string("zokio"));
  BOOST_TEST(ec.value() == static_cast<int>(zokio::error::not_a_zokio_executor));
  BOOST_TEST(!ec.message().empty());
  for (auto e : {zokio::error::io_uring_unavailable, zokio::error::operation_not_supported,
                 zokio::error::not_a_zokio_executor, zokio::error::would_deadlock,
                 zokio::error::backend_unavailable})
  {
    boost::system::error_code c = e;
    BOOST_TEST(c.message() != "zokio error");
    BOOST_TEST((c == e));
    BOOST_TEST((c != boost::asio::error::operation_aborted));
  }
}

BOOST_AUTO_TEST_CASE(kernel_cancellation_equals_operation_aborted)
{
  // Completions carry -errno from the kernel in the system category.
  boost::system::error_code ec(ECANCELED, boost::asio::error::get_system_category());
  BOOST_TEST((ec == boost::asio::error::operation_aborted));
}
