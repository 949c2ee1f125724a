/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ackc bench`: sets up the run (target, file descriptor limit, the prebuilt
 * message and reply buffers), starts one engine thread per --threads, shows a
 * progress line while they run, and prints the report.
 *
 * Exit status: 0 no errors, 1 some request failed, 2 usage (or the connections
 * do not fit the file descriptor limit), 3 nothing could connect.
 */

#include "args.h"

/* File descriptors kept for everything but the connections: stdio, epoll, eventfd, signalfd. */
#define BENCH_FD_RESERVE 16

int bench_run(const ClientArgs *a);
