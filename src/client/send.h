/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ackc [OPTIONS] [MESSAGE...]`: sends messages and checks each reply.
 *
 * oneshot: a connection per message, as the tutorial client does: connect,
 * send, read the reply until the server closes, compare.
 *
 * line: one connection; messages are written as they come (from the arguments,
 * or from standard input as it is read, so `tail -f | ackc -m line` streams) and
 * replies are matched to them in order. At most SEND_WINDOW messages are
 * awaiting a reply at once; then standard input is not read until replies
 * arrive, so memory stays bounded whatever is piped in (message-source.h
 * bounds a line).
 */

#include "args.h"

#define SEND_WINDOW    4096 /* line mode: messages awaiting a reply */
#define SEND_REPLY_MAX 8192 /* longest reply kept */

/* Returns the exit status. */
int send_run(const ClientArgs *a);
