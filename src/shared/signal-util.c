/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "signal-util.h"

int signalfd_open_blocked(const int *signals, size_t n) {
        struct sigaction ignore = { .sa_handler = SIG_IGN };
        sigset_t mask;
        int fd, r;

        (void)sigaction(SIGPIPE, &ignore, NULL);

        sigemptyset(&mask);
        for (size_t i = 0; i < n; i++)
                sigaddset(&mask, signals[i]);
        r = pthread_sigmask(SIG_BLOCK, &mask, NULL);
        if (r != 0)
                return -r;
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd < 0 ? -errno : fd;
}
