// zokio/detail/config.hpp: the few compile-time switches of the library.
#ifndef ZOKIO_DETAIL_CONFIG_HPP
#define ZOKIO_DETAIL_CONFIG_HPP

#include <boost/asio/detail/config.hpp>

#if !defined(__linux__)
# error "zokio: this version supports Linux (io_uring) only"
#endif

// ZOKIO_STRESS_CAPACITIES shrinks internal capacities (batch sizes, ring
// sizes) so stress tests reach the edges of every bounded structure.
#if defined(ZOKIO_STRESS_CAPACITIES)
# define ZOKIO_CAPACITY(normal, stressed) (stressed)
#else
# define ZOKIO_CAPACITY(normal, stressed) (normal)
#endif

#endif // ZOKIO_DETAIL_CONFIG_HPP
