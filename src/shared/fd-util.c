/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fd-util.h"

int64_t fd_limit_raise(int *ret_raise_error) {
        struct rlimit rl;
        int error = 0;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };

                if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                        rl = raised;
                else
                        error = errno;
        }
        if (ret_raise_error)
                *ret_raise_error = error;
        return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT64_MAX ? INT64_MAX : (int64_t)rl.rlim_cur;
}

int eventfd_open(void) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

        return fd < 0 ? -errno : fd;
}

void eventfd_signal(int fd) {
        uint64_t one = 1;

        (void)!write(fd, &one, sizeof one);
}

void eventfd_drain(int fd) {
        uint64_t v;

        (void)!read(fd, &v, sizeof v);
}
