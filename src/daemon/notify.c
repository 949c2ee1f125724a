/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "notify.h"
#include "parse-util.h"
#include "time-util.h"

_printf_(1, 0) static void notify_va(const char *format, va_list ap) {
#if HAVE_SYSTEMD
        _cleanup_(freep) char *s = NULL;

        if (!getenv("NOTIFY_SOCKET"))
                return;
        if (vasprintf(&s, format, ap) >= 0)
                (void)sd_notify(false, s);
#else
        (void)format;
        (void)ap;
#endif
}

_printf_(1, 2) static void notify(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        notify_va(format, ap);
        va_end(ap);
}

void notify_ready(void) {
        notify("READY=1");
}

void notify_reloading(void) {
        notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_usec(CLOCK_MONOTONIC));
}

void notify_stopping(void) {
        notify("STOPPING=1");
}

void notify_status(const char *format, ...) {
        _cleanup_(freep) char *line = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&line, format, ap);
        va_end(ap);
        if (r >= 0)
                notify("STATUS=%s", line);
}

void notify_watchdog(void) {
        notify("WATCHDOG=1");
}

void notify_extend_timeout(uint64_t usec) {
        notify("EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}

uint64_t notify_watchdog_usec(void) {
#if HAVE_SYSTEMD
        uint64_t usec = 0;

        if (sd_watchdog_enabled(false, &usec) > 0)
                return usec;
#endif
        return 0;
}

uint64_t notify_fdstore_max(void) {
#if HAVE_SYSTEMD
        const char *e = getenv("FDSTORE");
        uint64_t n;

        if (getenv("NOTIFY_SOCKET") && e && parse_uint64(e, 0, UINT32_MAX, &n) == 0)
                return n;
#endif
        return 0;
}

int notify_fdstore(const char *name, const int *fds, size_t n) {
#if HAVE_SYSTEMD
        char state[64];
        int r;

        /* FDPOLL=0: what ackd stores is never to be dropped for POLLHUP (systemd >= 246). */
        (void)snprintf(state, sizeof state, "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
        r = sd_pid_notify_with_fds(0, false, state, fds, (unsigned)n);
        return r < 0 ? r : r == 0 ? -ENOTCONN : 0;
#else
        (void)name;
        (void)fds;
        (void)n;
        return -EOPNOTSUPP;
#endif
}

void notify_fdstore_remove(const char *name) {
        notify("FDSTOREREMOVE=1\nFDNAME=%s", name);
}

int notify_barrier(uint64_t timeout_usec) {
#if HAVE_SYSTEMD
        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        return sd_notify_barrier(false, timeout_usec);
#else
        (void)timeout_usec;
        return 0;
#endif
}
