/* SPDX-License-Identifier: MIT */
/* What connections log: who the client is, what it sent (bounded), and the warnings
 * every connection could cause, once per interval. */
#include <stdio.h>
#include <sys/socket.h>

#include "connection-internal.h"
#include "escape.h"
#include "time-util.h"

const char *connection_peer(const Connection *c, const ConnectionContext *ctx, char *buf, size_t size) {
        if (c->peer != 0 && ctx->peers.items[c->peer].addr_len > 0) {
                const PeerRecord *p = &ctx->peers.items[c->peer];

                return sockaddr_format(&p->addr.sa, p->addr_len, buf, size);
        }
        return connection_socket_peer(c, buf, size);
}

const char *connection_socket_peer(const Connection *c, char *buf, size_t size) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
                return "unknown peer";
        if (ss.ss_family == AF_UNIX) {
                struct ucred cred;
                socklen_t n = sizeof cred;

                if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0) {
                        (void)snprintf(buf, size, "unix peer pid %d", (int)cred.pid);
                        return buf;
                }
        }
        return sockaddr_format((struct sockaddr *)&ss, len, buf, size);
}

/* Logs one received message at level info, bounded per connection. data is NULL for
 * an unterminated message at EOF, whose bytes went by in earlier reads. */
void connection_log_message(const ConnectionContext *ctx, Connection *c, const char *data, size_t len,
                            size_t total) {
        char text[ESCAPE_BUFFER_SIZE(LOG_PREVIEW_BYTES)];
        char buf[ADDRESS_STRING_MAX];
        const char *peer;

        if (c->n_logged > LOG_MESSAGES_PER_CONNECTION)
                return;
        peer = connection_peer(c, ctx, buf, sizeof buf);
        if (++c->n_logged > LOG_MESSAGES_PER_CONNECTION) {
                log_info("Further messages from %s are not logged", peer);
                return;
        }
        (void)escape_bytes(text, sizeof text, data, len, LOG_PREVIEW_BYTES);
        if (!data)
                log_info("Received: %zu bytes without a newline before EOF from %s", total, peer);
        else if (len == total && len <= LOG_PREVIEW_BYTES)
                log_info("Received: \"%s\" from %s", text, peer);
        else /* cut short here, or began in an earlier read */
                log_info("Received: \"%s%s\" (%zu bytes) from %s", len < total ? "..." : "", text, total,
                         peer);
}

void connection_on_line_message(const LineMessage *m, void *userdata) {
        LineLog *l = userdata;

        connection_log_message(l->ctx, l->c, m->data, m->len, m->total);
}

void connection_log_busy(ConnectionContext *ctx) {
        unsigned long long max = (unsigned long long)admission_max_connections(ctx->admission);
        unsigned suppressed = 0;

        if (!ratelimit_below(&ctx->log_limits->busy, ctx->now * USEC_PER_MSEC, &suppressed))
                return;
        if (suppressed > 0)
                log_warning("Connection limit reached (max-connections %llu): answering ERR busy "
                            "(%u more since the last message)",
                            max, suppressed);
        else
                log_warning("Connection limit reached (max-connections %llu): answering ERR busy", max);
}

void connection_log_accepted(const ConnectionContext *ctx, const Connection *c, const struct sockaddr *peer,
                             socklen_t peer_len) {
        char buf[ADDRESS_STRING_MAX];
        const char *name;

        /* A unix client has no address; connection_peer() shows its pid instead. */
        if (peer_len > 0 && peer->sa_family != AF_UNIX)
                name = sockaddr_format(peer, peer_len, buf, sizeof buf);
        else
                name = connection_peer(c, ctx, buf, sizeof buf);
        log_info("Accepted connection from %s", name);
}
