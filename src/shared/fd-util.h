/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * File descriptor plumbing that ackd and ackc both need: the RLIMIT_NOFILE
 * raise, and eventfds used as "look at the shared state" doorbells between
 * threads (the flags or counters they guard say what happened, so a ring that
 * merges with another loses nothing).
 */

#include <stdint.h>

/* Raises the soft RLIMIT_NOFILE to the hard limit (the soft 1024 exists for
 * select(), which neither program uses). Returns the limit now in force
 * (UINT64_MAX for unlimited), or a negative errno if it cannot be read. A failed
 * raise is not an error: *ret_raise_error (if given) receives its errno, or 0. */
int64_t fd_limit_raise(int *ret_raise_error);

/* A non-blocking, close-on-exec eventfd, or a negative errno. */
int eventfd_open(void);

/* Rings the doorbell. Never blocks: a counter near overflow means it is ringing already. */
void eventfd_signal(int fd);

/* Clears the doorbell, so the next poll() waits for the next ring. */
void eventfd_drain(int fd);
