/* SPDX-License-Identifier: MIT */
/*
 * A connection leaving for the next ackd, or arriving from the previous one,
 * across a restart (handover.c carries the records and the sockets). What a
 * connection is fits in a HandoverConnection: its state, what it owes, its
 * line parser, its timer, and the client a PROXY header named; its profile
 * travels by generation, its listener by index.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "connection-internal.h"
#include "connection-pool.h"

static const uint8_t handover_states[] = {
        [CONNECTION_READING] = HANDOVER_READING,
        [CONNECTION_REPLYING] = HANDOVER_REPLYING,
        [CONNECTION_LINGER] = HANDOVER_LINGER,
        [CONNECTION_HEADER] = HANDOVER_HEADER,
};

static const uint8_t connection_states[] = {
        [HANDOVER_READING] = CONNECTION_READING,
        [HANDOVER_REPLYING] = CONNECTION_REPLYING,
        [HANDOVER_LINGER] = CONNECTION_LINGER,
        [HANDOVER_HEADER] = CONNECTION_HEADER,
};

static uint64_t timer_remaining(const ConnectionContext *ctx, const Connection *c) {
        return c->timer.deadline > ctx->now ? c->timer.deadline - ctx->now : 0;
}

/* The record of c, as it stands. */
static void export_record(ConnectionContext *ctx, const Connection *c, const struct stat *st,
                          HandoverConnection *rec) {
        const PeerRecord *p = c->peer ? peer_table_get(&ctx->peers, c->peer) : NULL;

        *rec = (HandoverConnection){
                .inode = (uint64_t)st->st_ino,
                .listener = c->listener,
                .mode = (uint8_t)connection_mode(c),
                .state = handover_states[c->state],
                .pending_acks = c->pending_acks,
                .out_offset = c->state == CONNECTION_LINGER ? 0 : c->out_offset,
                .parser_partial = c->parser.partial,
                .parser_cr = c->parser.cr,
                .error_reply = c->error_reply,
                .eof = (c->flags & CONNECTION_EOF) != 0,
                .rejected = (c->flags & CONNECTION_REJECTED) != 0,
                .n_logged = c->n_logged,
                .bytes_written = c->bytes_written,
                .timer_remaining_ms = timer_remaining(ctx, c),
        };
        if (p && p->addr_len > 0) {
                rec->has_client = true;
                rec->client_len = p->addr_len;
                memcpy(&rec->client, &p->addr, p->addr_len);
        }
}

int connection_export(ConnectionContext *ctx, Connection *c, HandoverConnection *rec, int *ret_fd,
                      unsigned *ret_generation) {
        struct stat st;

        /* A PROXY header already half here would need its bytes carried over too: such a
         * connection (rare, and brief) is left to the caller to drain instead. */
        if (c->state == CONNECTION_HEADER && peer_table_get(&ctx->peers, c->peer)->header_len > 0)
                return -EBUSY;
        if (fstat(c->fd, &st) < 0)
                return -errno;

        /* Write what can be written now: the next ackd owes only the rest. A failure
         * here shows on the socket again over there. */
        c->flags &= (uint8_t)~CONNECTION_OUT_BLOCKED;
        (void)connection_flush(ctx, c);

        export_record(ctx, c, &st, rec);
        *ret_generation = c->profile->generation;
        stat_add(&ctx->stats[c->listener].handed_over, 1);

        /* Gone from here, but the socket stays open: it is the caller's now. */
        if (c->interest)
                (void)epoll_ctl(ctx->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        *ret_fd = c->fd;
        c->fd = -1;
        connection_forget(ctx, c);
        return 0;
}

/* The connection's timer, as much of it as was left. Imports come in ascending order of
 * what is left (handover.c sorts them), which keeps each queue ordered. */
static void import_timer(ConnectionContext *ctx, Connection *c, uint64_t remaining) {
        TimerQueue *q = connection_timer_queue(ctx, c);

        timer_queue_add(q, &c->timer, ctx->now);
        if (remaining < q->duration)
                timer_queue_set_deadline(q, &c->timer, ctx->now + remaining);
}

static int import_peer(ConnectionContext *ctx, Connection *c, const HandoverConnection *rec) {
        PeerRecord *p;

        if (!rec->has_client && rec->state != HANDOVER_HEADER)
                return 0;
        c->peer = peer_table_add(&ctx->peers);
        if (c->peer == 0)
                return -ENOMEM;
        p = peer_table_get(&ctx->peers, c->peer);
        if (rec->has_client && (size_t)rec->client_len <= sizeof p->addr) {
                memcpy(&p->addr, &rec->client, rec->client_len);
                p->addr_len = rec->client_len;
        }
        return 0;
}

int connection_import(ConnectionContext *ctx, const Listener *l, Profile *p, int fd,
                      const HandoverConnection *rec) {
        Connection *c;

        /* Admitted before the restart: still admitted, whatever max-connections says now. */
        admission_claim(ctx->admission, rec->rejected ? ADMISSION_REJECT : ADMISSION_SERVE);
        c = connection_pool_get(&ctx->pool);
        if (!c) {
                admission_leave(ctx->admission, rec->rejected ? ADMISSION_REJECT : ADMISSION_SERVE);
                return -ENOMEM;
        }
        *c = (Connection){
                .kind = SOURCE_CONNECTION,
                .listener = l->index,
                .state = connection_states[rec->state],
                .flags = (uint8_t)((rec->mode == PROTOCOL_LINE ? CONNECTION_LINE : 0) |
                                   (rec->eof ? CONNECTION_EOF : 0) |
                                   (rec->rejected ? CONNECTION_REJECTED : 0)),
                .fd = fd,
                .pending_acks = rec->pending_acks,
                .out_offset = rec->out_offset,
                .parser = { .partial = rec->parser_partial, .cr = rec->parser_cr },
                .error_reply = rec->error_reply,
                .n_logged = rec->n_logged,
                .bytes_written = rec->bytes_written,
                .profile = profile_ref(p),
        };
        import_timer(ctx, c, rec->timer_remaining_ms);
        if (import_peer(ctx, c, rec) < 0) {
                c->fd = -1; /* the caller closes it */
                connection_close(ctx, c);
                return -ENOMEM;
        }
        stat_add(&ctx->stats[c->listener].taken_over, 1);
        /* Go on where the previous ackd stopped: write what is owed, then wait. */
        connection_finish(ctx, c, connection_step(ctx, c, false));
        return 0;
}
