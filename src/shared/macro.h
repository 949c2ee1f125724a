/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small helpers used everywhere: cleanup attributes, fd handling, array sizes.
 * Convention (as in systemd): functions return 0 or a positive value on success
 * and a negative errno-style code on failure; destructors accept NULL/-1.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define STRLEN(s) (sizeof(s) - 1)

/* Returns -1 so that "fd = safe_close(fd);" leaves the variable invalidated. errno is preserved. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}

/* Returns NULL so that "p = mfree(p);" leaves the pointer invalidated. */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **)p);
}

/* Hands ownership out of a _cleanup_ variable. */
static inline int take_fd(int *fd) {
        int r = *fd;
        *fd = -1;
        return r;
}

/* errno as a negative return value, never 0 (some libc paths leave errno unset). */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
