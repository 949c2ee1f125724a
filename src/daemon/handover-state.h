/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The state one ackd hands to the next across a restart, with the connections'
 * sockets (ackd(8), RESTART AND UPGRADE): the listeners, the profiles (what a
 * connection keeps from the settings it was accepted under) and one record per
 * established connection, which the next ackd matches to its socket by the
 * socket's inode. Pure: text in, a HandoverState out, no I/O, so it can be
 * unit-tested and fuzzed; the daemon converts to and from its connections.
 *
 * The text is line-based, so that `cat` shows it. Version 1:
 *
 *   ackd-handover 1
 *   listener 0 mode=line proxy=0 name=[::]:9998
 *   listener 1 mode=oneshot proxy=1 name=unix:/run/ackd/ackd.sock
 *   profile 0 max-message=1024 idle-timeout-ms=30000 ack=ACK!
 *   profile 1 max-message=65536 idle-timeout-ms=5000 ack=OK\x20then
 *   connection inode=48213 listener=0 profile=1 mode=line state=reading acks=2 offset=3 ...
 *   connection inode=48217 listener=1 profile=0 mode=oneshot state=reading acks=0 ... client=192.0.2.7:40522
 *   end listeners=2 profiles=2 connections=2
 *
 * Every line ends with LF; fields are separated by one space. A value is
 * escaped: a byte from '!' to '~' stands for itself, except '\', written "\\";
 * any other byte (space, control bytes, bytes from 0x7f) is "\xNN" with two
 * lowercase hex digits. The parser takes only the text handover_state_format()
 * writes, so a state has one spelling: records grouped in that order, each
 * listener and profile numbered from 0, keys in the order of the example,
 * numbers in decimal without leading zeros, connections in ascending inode
 * order (which rules out an inode twice, and lets handover_state_find() bisect).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "address.h"
#include "protocol.h"

#define HANDOVER_MAGIC   "ackd-handover"
#define HANDOVER_VERSION 1

/* The most --max-connections allows. */
#define HANDOVER_CONNECTIONS_MAX 1000000
/* A profile per settings generation that connections still use. Beyond this many, the
 * daemon hands over the connections of the newest ones and drains the rest. */
#define HANDOVER_PROFILES_MAX 256
/* The configured addresses (SETTINGS_LISTEN_MAX, 64), a host name giving several each,
 * and whatever socket units pass. */
#define HANDOVER_LISTENERS_MAX 256

/* Longer than any line handover_state_format() writes (a listener line, with a name
 * of 286 bytes that are all escaped, is the longest: 1,183 bytes). */
#define HANDOVER_LINE_MAX 2048

/* Room for any reason handover_state_parse() or handover_state_check() gives. */
#define HANDOVER_ERROR_MAX 256

/* HandoverConnection.state: what the next ackd does with the connection. */
typedef enum HandoverConnectionState {
        HANDOVER_READING,  /* serving: read messages, acknowledge them */
        HANDOVER_REPLYING, /* write what is owed, then shut down (or close, after EOF) */
        HANDOVER_LINGER,   /* answered and shut down: discard input until EOF */
        HANDOVER_HEADER,   /* +proxy listener: its PROXY header has not begun to arrive */
        _HANDOVER_STATE_MAX,
} HandoverConnectionState;

/* HandoverConnection.error_reply: the error line owed after the acks. */
typedef enum HandoverErrorReply {
        HANDOVER_ERROR_NONE,
        HANDOVER_ERROR_BUSY,     /* REPLY_ERR_BUSY: a connection over max-connections */
        HANDOVER_ERROR_TOO_LONG, /* REPLY_ERR_TOO_LONG */
        _HANDOVER_ERROR_MAX,
} HandoverErrorReply;

typedef struct HandoverListener {
        char name[ADDRESS_STRING_MAX]; /* Listener.name, "[::]:9998"; 1 or more bytes, no NUL */
        uint8_t mode;                  /* ProtocolMode */
        bool proxy;                    /* connections start with a PROXY header */
} HandoverListener;

typedef struct HandoverProfile {
        char ack[ACK_TEXT_MAX + 1]; /* 1 to ACK_TEXT_MAX bytes, no control byte (as --ack) */
        size_t ack_len;
        uint64_t max_message;     /* 1..ACK_MESSAGE_MAX */
        uint64_t idle_timeout_ms; /* 1..HANDOVER_IDLE_TIMEOUT_MAX_MS */
} HandoverProfile;

/* As --idle-timeout allows. */
#define HANDOVER_IDLE_TIMEOUT_MAX_MS (UINT64_C(24) * 3600 * 1000)
/* The longest a lingering connection's timer runs (LINGER_TIMEOUT_MS in connection.h),
 * and a PROXY header's (--proxy-timeout). */
#define HANDOVER_LINGER_MAX_MS UINT64_C(2000)
#define HANDOVER_HEADER_MAX_MS (UINT64_C(3600) * 1000)

typedef struct HandoverConnection {
        uint64_t inode;              /* st_ino of the socket, never 0 */
        uint32_t listener;           /* index into HandoverState.listeners */
        uint32_t profile;            /* index into HandoverState.profiles */
        uint8_t mode;                /* ProtocolMode, the listener's */
        uint8_t state;               /* HandoverConnectionState */
        uint32_t pending_acks;       /* acks owed, in order */
        uint32_t out_offset;         /* bytes already written of the first reply owed */
        uint32_t parser_partial;     /* LineParser: bytes of the unterminated message */
        bool parser_cr;              /* ... of which the last is a CR */
        uint8_t error_reply;         /* HandoverErrorReply, owed after the acks */
        bool eof;                    /* the peer had finished sending */
        bool rejected;               /* told ERR busy: counted apart from max-connections */
        uint8_t n_logged;            /* messages logged so far */
        uint32_t bytes_written;      /* modulo 2^32 */
        uint64_t timer_remaining_ms; /* of its timer: the idle timeout, linger or PROXY timeout */
        bool has_client;             /* a PROXY header named the client: */
        socklen_t client_len;
        struct sockaddr_storage client; /* ... kept as sockaddr_format() shows it (see below) */
} HandoverConnection;

typedef struct HandoverState {
        HandoverListener *listeners;
        size_t n_listeners;
        HandoverProfile *profiles;
        size_t n_profiles;
        HandoverConnection *connections;
        size_t n_connections;
        size_t listeners_allocated, profiles_allocated, connections_allocated;
} HandoverState;

/* Append a zero-filled record, returned in *ret (the arrays are malloc'ed, and
 * handover_state_done() frees them). -E2BIG beyond the caps above, or -ENOMEM. */
int handover_state_add_listener(HandoverState *s, HandoverListener **ret);
int handover_state_add_profile(HandoverState *s, HandoverProfile **ret);
int handover_state_add_connection(HandoverState *s, HandoverConnection **ret);

/* Puts the connections in ascending inode order, as handover_state_format() needs them. */
void handover_state_sort(HandoverState *s);

/* Whether s follows every rule handover_state_parse() checks. Returns 0, or -EINVAL with
 * "connection 12 (inode 48213): offset: not within the reply owed" in err. */
int handover_state_check(const HandoverState *s, char *err, size_t err_size);

/*
 * Writes s as text into a malloc'ed buffer (NUL-terminated; *ret_len excludes the NUL).
 * A client address is written as sockaddr_format() shows it, and read back as
 * sockaddr_parse() reads that (an IPv4-mapped one becomes IPv4, a unix name stops at its
 * first unprintable byte: the next ackd logs the client as this one did); an address
 * that sockaddr_format() shows in no form sockaddr_parse() takes ("unix:", "unknown") is
 * left out. Returns 0, -EINVAL if handover_state_check() refuses s, or -ENOMEM.
 */
int handover_state_format(const HandoverState *s, char **ret, size_t *ret_len);

/*
 * Reads the text of handover_state_format(), strictly. Beyond the spelling (see the top):
 *   - the first line names this format and version 1; the last is the end line, whose
 *     counts are those of the records, and nothing follows it;
 *   - lines of at most HANDOVER_LINE_MAX bytes, printable ASCII and spaces only;
 *   - every key known and present, once (only client= may be left out), every value in
 *     the range of its field: names of 1 to 286 bytes without NUL, acks as --ack takes
 *     them, max-message and idle-timeout-ms as the options take them, partial at most
 *     ACK_MESSAGE_MAX + 1, numbers within their C types;
 *   - at most HANDOVER_LISTENERS_MAX, HANDOVER_PROFILES_MAX and HANDOVER_CONNECTIONS_MAX
 *     records; inodes not 0, ascending, none twice;
 *   - a connection as the daemon leaves one (connection.c): its listener and profile
 *     exist, its mode is its listener's, a client only behind a proxy listener, idle-ms
 *     at most its profile's idle timeout, partial (less a final CR) at most its
 *     profile's max-message, cr only with a partial message; a oneshot connection only
 *     while reading, owing nothing, without parser state; eof and an error reply only
 *     while replying; no parser state after eof; ERR busy only for a connection never
 *     read (no ack, parser state or eof); no eof after a message too long; offset within
 *     the reply being written (an ack and its LF, else the error line, else 0).
 * buf need not be NUL-terminated. Returns 0, or -EBADMSG with a one-line reason in err
 * ("line 12: connection: acks=4294967296: out of range (0..4294967295)"), and then *ret
 * is empty and holds nothing allocated.
 */
int handover_state_parse(const char *buf, size_t len, HandoverState *ret, char *err, size_t err_size);

/* The record of the connection whose socket has this inode, or NULL. s must be sorted. */
const HandoverConnection *handover_state_find(const HandoverState *s, uint64_t inode);

/* Frees what s holds and empties it. */
void handover_state_done(HandoverState *s);
