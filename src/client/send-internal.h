/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside the send command: what send.c (the command, oneshot mode) and
 * send-line.c (line mode) share. Errors: the functions return 0 or a negative
 * errno and record in the Sender where it happened; send_run() alone turns it
 * into one line on standard error and an exit status. What is said about a
 * message's reply is not an error of the command: it is reported as it happens,
 * and only sets `failed`.
 */

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "escape.h"
#include "message-source.h"
#include "target.h"

/* Bytes of a message or reply shown in an error line. */
#define SHOW_MAX 64

/* Where the error that stopped the command happened. */
typedef enum SendStep {
        STEP_SETUP,
        STEP_INPUT, /* reading standard input */
        STEP_CONNECT,
        STEP_WAIT,  /* poll() */
        STEP_PROXY, /* building the PROXY header (--proxy) */
} SendStep;

typedef struct Sender {
        const ClientArgs *args;
        const Target *target;
        MessageSource src;
        SendStep step; /* of the error returned, if any */
        bool failed;   /* a reply was wrong or missing (reported) */
} Sender;

static inline int sender_error(Sender *s, SendStep step, int r) {
        s->step = step;
        return r;
}

/* data, escaped and cut after SHOW_MAX bytes, in buf (ESCAPE_BUFFER_SIZE(SHOW_MAX)). */
const char *send_show(char *buf, size_t size, const void *data, size_t len);

/* Checks one reply to the message msg against --expect: prints it if it is the expected
 * one and returns true, else reports it on standard error. */
bool send_check_reply(const ClientArgs *a, const char *msg, size_t msg_len, const char *reply, size_t len);

/* Line mode: the messages over one connection. */
int send_line(Sender *sender);
