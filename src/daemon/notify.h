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
