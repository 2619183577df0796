// zokio/random_access_file.hpp: zokio::random_access_file, as boost::asio::random_access_file.
#ifndef ZOKIO_RANDOM_ACCESS_FILE_HPP
#define ZOKIO_RANDOM_ACCESS_FILE_HPP

#include <zokio/basic_random_access_file.hpp>

#endif // ZOKIO_RANDOM_ACCESS_FILE_HPP
