/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Signals as file descriptor events: the signals are blocked in the calling
 * thread (threads created afterwards inherit the mask, so only the signalfd ever
 * sees them) and read from a non-blocking signalfd in the main loop.
 * SIGPIPE is ignored too: a write to a closed socket says EPIPE instead.
 */

#include <stddef.h>

/* Returns the signalfd for the n signals, or a negative errno. */
int signalfd_open_blocked(const int *signals, size_t n);
