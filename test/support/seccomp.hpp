// test/support/seccomp.hpp: refusing io_uring to the calling process, as a
// container's seccomp profile does (Docker 25+ and containerd 2 answer EPERM,
// gVisor ENOSYS).
#ifndef ZOKIO_TEST_SUPPORT_SECCOMP_HPP
#define ZOKIO_TEST_SUPPORT_SECCOMP_HPP

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

namespace zokio_test {

// Makes io_uring_setup fail with err in the calling thread and in every
// process it starts from now on (seccomp filters are inherited across fork
// and exec). Irreversible: call it in a child process. False on failure.
inline bool refuse_io_uring(int err) noexcept
{
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
      && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_SECCOMP_HPP
