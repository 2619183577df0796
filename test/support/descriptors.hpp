// test/support/descriptors.hpp: counting the descriptors a test leaves open.
#ifndef ZOKIO_TEST_SUPPORT_DESCRIPTORS_HPP
#define ZOKIO_TEST_SUPPORT_DESCRIPTORS_HPP

#include <dirent.h>

namespace zokio_test {

// Every descriptor the process has open (entries of /proc/self/fd, the
// listing's own included, so two counts compare). On the kqueue backend
// libkqueue opens and frees descriptors of its own (see net.hpp's open_fds,
// which counts internet sockets only).
inline int open_descriptors()
{
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd"))
  {
    while (::readdir(d))
      ++n;
    ::closedir(d);
  }
  return n;
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_DESCRIPTORS_HPP
