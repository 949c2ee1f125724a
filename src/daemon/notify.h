/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service face: what ackd tells its service manager (sd_notify(3)). Every
 * call is a no-op without $NOTIFY_SOCKET, and in a build without libsystemd.
 */

#include <stdint.h>

#include "macro.h"

/* READY=1: serving (at start, and after a reload). */
void notify_ready(void);

/* RELOADING=1 with the MONOTONIC_USEC systemd wants for Type=notify-reload. */
void notify_reloading(void);

/* STOPPING=1. */
void notify_stopping(void);

/* STATUS=...: the line `systemctl status` shows. */
void notify_status(const char *format, ...) _printf_(1, 2);

/* WATCHDOG=1: every worker made progress. */
void notify_watchdog(void);

/* EXTEND_TIMEOUT_USEC=: the stop is progressing, allow this much longer. */
void notify_extend_timeout(uint64_t usec);

/* The watchdog interval systemd asked for (WatchdogSec=), or 0 when there is none. */
uint64_t notify_watchdog_usec(void);

/* How many fds the service manager's file descriptor store takes (FileDescriptorStoreMax=),
 * as $FDSTORE says (systemd 254 sets it; ackd.service sets it for older versions), or 0
 * when there is no store: no $NOTIFY_SOCKET, no $FDSTORE, or a build without libsystemd. */
uint64_t notify_fdstore_max(void);

/* The most fds one FDSTORE=1 message carries (the kernel's SCM_MAX_FD). */
#define NOTIFY_FDS_MAX 253

/* FDSTORE=1 with FDNAME=name: n fds (at most NOTIFY_FDS_MAX) into the store. Returns 0 or a
 * negative errno. */
int notify_fdstore(const char *name, const int *fds, size_t n);

/* FDSTOREREMOVE=1: drops every fd stored under name. */
void notify_fdstore_remove(const char *name);

/* Waits until the service manager has processed every message sent so far, at most
 * timeout_usec. Returns 0 or a negative errno. */
int notify_barrier(uint64_t timeout_usec);
