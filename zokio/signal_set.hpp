// zokio/signal_set.hpp: the signal set on any executor of a zokio context,
// as boost::asio::signal_set.
#ifndef ZOKIO_SIGNAL_SET_HPP
#define ZOKIO_SIGNAL_SET_HPP

#include <zokio/basic_signal_set.hpp>

namespace zokio {

/// A set of signals to wait for.
using signal_set = basic_signal_set<>;

} // namespace zokio

#endif // ZOKIO_SIGNAL_SET_HPP
