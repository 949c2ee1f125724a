/* SPDX-License-Identifier: MIT */
#pragma once

/* What connection.c and connection-proxy.c share; nothing outside the connection module
 * includes this. */

#include "connection.h"

/* connection_step() result besides epoll interest bits: the connection is finished. */
#define STEP_DONE 0

/* Bytes of a message shown in the log. */
#define LOG_PREVIEW_BYTES 64

/* The timer queue c's state calls for. */
TimerQueue *connection_timer_queue(ConnectionContext *ctx, Connection *c);

/* Writes what is owed; stops at a short write (CONNECTION_OUT_BLOCKED). */
int connection_flush(ConnectionContext *ctx, Connection *c);

/* Advances c as far as it can go without blocking; returns the epoll events to wait for,
 * STEP_DONE, or a negative errno. connection_finish() applies that verdict. */
int connection_step(ConnectionContext *ctx, Connection *c, bool readable);
void connection_finish(ConnectionContext *ctx, Connection *c, int r);

/* Everything connection_close() does but the socket's: c is gone, its fd is not touched. */
void connection_forget(ConnectionContext *ctx, Connection *c);

/* Moves c to state, and its timer to the queue the state calls for. */
void connection_set_state(ConnectionContext *ctx, Connection *c, ConnectionState state);

/* What the client sent: n > 0 bytes, read now or left over after its PROXY header. */
void connection_received(ConnectionContext *ctx, Connection *c, const char *data, size_t n);

/* The client finished sending. */
void connection_eof(ConnectionContext *ctx, Connection *c);

/* The client, for a log line: the address its PROXY header named, else the socket's peer. */
const char *connection_peer(const Connection *c, const ConnectionContext *ctx, char *buf, size_t size);

/* The socket's peer: "192.0.2.1:40000", or "unix peer pid 123". */
const char *connection_socket_peer(const Connection *c, char *buf, size_t size);

/* connection-log.c. Logs one received message at level info, bounded per connection.
 * data is NULL for an unterminated message at EOF, whose bytes went by in earlier reads. */
void connection_log_message(const ConnectionContext *ctx, Connection *c, const char *data, size_t len,
                            size_t total);

/* line_parser_feed()'s callback for connection_log_message(); userdata is a LineLog. */
typedef struct LineLog {
        const ConnectionContext *ctx;
        Connection *c;
} LineLog;
void connection_on_line_message(const LineMessage *m, void *userdata);

/* "Connection limit reached", once per interval over all workers. */
void connection_log_busy(ConnectionContext *ctx);

/* "Accepted connection from ..." at level info. */
void connection_log_accepted(const ConnectionContext *ctx, const Connection *c, const struct sockaddr *peer,
                             socklen_t peer_len);

/* connection-proxy.c: at accept, for a +proxy listener. Returns false when the
 * connection must be closed at once (untrusted source, out of memory; counted). */
bool connection_proxy_accept(ConnectionContext *ctx, Connection *c, const struct sockaddr *peer,
                             socklen_t peer_len);

/* HEADER and readable: reads and parses. Returns 0 (go on; the state may have moved on),
 * 1 (finished: close), or a negative errno from recv(). */
int connection_read_header(ConnectionContext *ctx, Connection *c);

/* HEADER and --proxy-timeout passed: counted and logged; the caller closes. */
void connection_header_timeout(ConnectionContext *ctx, Connection *c);

/* At close: frees what c kept in the peer table. */
void connection_proxy_release(ConnectionContext *ctx, Connection *c);
