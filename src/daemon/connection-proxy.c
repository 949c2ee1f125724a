/* SPDX-License-Identifier: MIT */
/*
 * The HEADER state of a +proxy listener's connection: the PROXY protocol header
 * comes first, then the connection is served as its mode says.
 *
 * The first read usually holds the whole header, and often the message after it:
 * the header is parsed in the scratch buffer and what follows is served at once,
 * with no extra read or wakeup. A header split across reads is kept in the
 * connection's peer record, growing with what arrives, at most PROXY_HEADER_MAX
 * bytes, and only until it is complete or --proxy-timeout has passed. Reads are
 * then bounded by the room left, so that whatever follows the header ends up in
 * the same buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connection-internal.h"
#include "proxy-protocol.h"
#include "time-util.h"

typedef enum ProxyProblem {
        PROXY_UNTRUSTED,
        PROXY_BAD_HEADER,
        PROXY_TIMEOUT,
} ProxyProblem;

/* Counted always; logged once per interval over all workers, with how many were not. */
static void proxy_problem(ConnectionContext *ctx, Connection *c, ProxyProblem problem, const char *detail) {
        static const char *const what[] = {
                [PROXY_UNTRUSTED] = "refused a connection to a +proxy listener from",
                [PROXY_BAD_HEADER] = "closed a connection with a bad PROXY header from",
                [PROXY_TIMEOUT] = "closed a connection that sent no complete PROXY header in time from",
        };
        WorkerStats *st = &ctx->stats[c->listener];
        char buf[ADDRESS_STRING_MAX];
        unsigned suppressed = 0;

        stat_add(problem == PROXY_UNTRUSTED ? &st->proxy_untrusted
                 : problem == PROXY_TIMEOUT ? &st->proxy_timeouts
                                            : &st->proxy_bad_headers,
                 1);
        if (!ratelimit_below(&ctx->log_limits->proxy, ctx->now * USEC_PER_MSEC, &suppressed))
                return;
        log_warning("PROXY protocol: %s %s (%s)%s", what[problem],
                    connection_socket_peer(c, buf, sizeof buf), detail,
                    suppressed > 0 ? "; more since the last message" : "");
}

bool connection_proxy_accept(ConnectionContext *ctx, Connection *c, const struct sockaddr *peer,
                             socklen_t peer_len) {
        if (peer_len > 0 && !profile_proxy_trusted(c->profile, peer, peer_len)) {
                proxy_problem(ctx, c, PROXY_UNTRUSTED, "not in --proxy-from");
                return false;
        }
        c->peer = peer_table_add(&ctx->peers);
        if (c->peer == 0) {
                stat_add(&ctx->stats[c->listener].resets, 1);
                return false;
        }
        connection_set_state(ctx, c, CONNECTION_HEADER);
        return true;
}

static void log_proxied(ConnectionContext *ctx, Connection *c, const ProxyHeader *h) {
        char client[ADDRESS_STRING_MAX], via[ADDRESS_STRING_MAX];

        if (h->has_addresses && h->source.ss_family != AF_UNIX)
                log_info("Accepted connection from %s via %s",
                         sockaddr_format((const struct sockaddr *)&h->source, h->source_len, client,
                                         sizeof client),
                         connection_socket_peer(c, via, sizeof via));
        else
                log_info("Accepted connection from %s (PROXY header %s)",
                         connection_socket_peer(c, via, sizeof via),
                         h->has_addresses ? "from a unix socket" : "without addresses");
}

/* The header is complete: remember who the client is, serve what followed it. */
static void header_done(ConnectionContext *ctx, Connection *c, const ProxyHeader *h, const char *rest,
                        size_t n_rest) {
        PeerRecord *p = peer_table_get(&ctx->peers, c->peer);

        if (h->has_addresses && (h->source.ss_family == AF_INET || h->source.ss_family == AF_INET6)) {
                memcpy(&p->addr, &h->source, h->source_len);
                p->addr_len = h->source_len;
        }
        if (log_level_enabled(LOG_INFO))
                log_proxied(ctx, c, h);
        connection_set_state(ctx, c, CONNECTION_READING);
        if (n_rest > 0)
                connection_received(ctx, c, rest, n_rest);
}

/* Keeps the n bytes at data after what is held already. */
static int header_keep(PeerRecord *p, const char *data, size_t n) {
        char *b = realloc(p->header, p->header_len + n);

        if (!b)
                return -ENOMEM;
        memcpy(b + p->header_len, data, n);
        p->header = b;
        p->header_len = (uint16_t)(p->header_len + n);
        return 0;
}

/* Parses what has arrived: the header bytes held plus the n just read. Returns 0 or 1,
 * as connection_read_header(). */
static int header_parse(ConnectionContext *ctx, Connection *c, size_t n) {
        PeerRecord *p = peer_table_get(&ctx->peers, c->peer);
        const char *buf = ctx->scratch;
        size_t len = n;
        ProxyHeader h;
        int r;

        if (p->header_len > 0) {
                if (header_keep(p, ctx->scratch, n) < 0) {
                        stat_add(&ctx->stats[c->listener].resets, 1);
                        return 1;
                }
                buf = p->header;
                len = p->header_len;
        }
        r = proxy_header_parse(buf, len, &h);
        if (r < 0) {
                proxy_problem(ctx, c, PROXY_BAD_HEADER, r == -E2BIG ? "too long" : "malformed");
                return 1;
        }
        if (r == 0) {
                if (p->header_len == 0 && header_keep(p, ctx->scratch, n) < 0) {
                        stat_add(&ctx->stats[c->listener].resets, 1);
                        return 1;
                }
                return 0;
        }
        header_done(ctx, c, &h, buf + r, len - (size_t)r);
        p = peer_table_get(&ctx->peers, c->peer);
        p->header = mfree(p->header);
        p->header_len = 0;
        return 0;
}

int connection_read_header(ConnectionContext *ctx, Connection *c) {
        const PeerRecord *p = peer_table_get(&ctx->peers, c->peer);
        /* Once part of a header is held, read no more than it may still grow by: whatever
         * follows it then lands in the same buffer. */
        size_t size = p->header_len > 0 ? (size_t)PROXY_HEADER_MAX - p->header_len : ctx->scratch_size;
        ssize_t n;

        if (size == 0) {
                proxy_problem(ctx, c, PROXY_BAD_HEADER, "too long");
                return 1;
        }
        n = recv(c->fd, ctx->scratch, size, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0) {
                /* A client that connects and leaves without a byte (a port check) is no
                 * error; one that leaves halfway through its header is. */
                if (p->header_len > 0)
                        proxy_problem(ctx, c, PROXY_BAD_HEADER, "truncated");
                return 1;
        }
        return header_parse(ctx, c, (size_t)n);
}

void connection_header_timeout(ConnectionContext *ctx, Connection *c) {
        proxy_problem(ctx, c, PROXY_TIMEOUT, "--proxy-timeout");
}

void connection_proxy_release(ConnectionContext *ctx, Connection *c) {
        peer_table_remove(&ctx->peers, c->peer);
        c->peer = 0;
}
