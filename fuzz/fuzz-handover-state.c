/* SPDX-License-Identifier: MIT */
/*
 * The restart handover's state (handover-state.c), which the next ackd reads
 * from whatever the memfd holds. Two properties, one per reading of the input:
 *
 * - As text: handover_state_parse() either refuses it with -EBADMSG, a
 *   printable one-line reason and an empty state, or takes it; then the state
 *   passes handover_state_check(), formats back to exactly the input (the
 *   format has one spelling per state), parses again to an equal state (field
 *   by field), and handover_state_find() finds every connection.
 *
 * - As a recipe (when it does not start with 'a', as a state does): the bytes
 *   build a HandoverState the way the daemon would fill one, client addresses
 *   as raw sockaddr bytes. handover_state_format() accepts it exactly when
 *   handover_state_check() does, and what it writes parses to the same state
 *   (a client as sockaddr_format() shows it, or left out when that form does
 *   not read back).
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "handover-state.h"
#include "macro.h"

static void assert_printable_line(const char *s, size_t size) {
        size_t n = strnlen(s, size);

        fuzz_assert(n > 0 && n < size);
        for (size_t i = 0; i < n; i++)
                fuzz_assert((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

static bool state_is_empty(const HandoverState *s) {
        static const HandoverState empty = { 0 };

        return memcmp(s, &empty, sizeof *s) == 0;
}

/* b was parsed from what a formatted to. Clients are compared as they are shown when
 * exact_clients is false (a came from raw bytes), else byte for byte. */
static void assert_states_equal(const HandoverState *a, const HandoverState *b, bool exact_clients) {
        fuzz_assert(a->n_listeners == b->n_listeners);
        fuzz_assert(a->n_profiles == b->n_profiles);
        fuzz_assert(a->n_connections == b->n_connections);
        for (size_t i = 0; i < a->n_listeners; i++) {
                fuzz_assert(strcmp(a->listeners[i].name, b->listeners[i].name) == 0);
                fuzz_assert(a->listeners[i].mode == b->listeners[i].mode);
                fuzz_assert(a->listeners[i].proxy == b->listeners[i].proxy);
        }
        for (size_t i = 0; i < a->n_profiles; i++) {
                const HandoverProfile *x = &a->profiles[i], *y = &b->profiles[i];

                fuzz_assert(x->ack_len == y->ack_len && memcmp(x->ack, y->ack, x->ack_len) == 0);
                fuzz_assert(y->ack[y->ack_len] == '\0');
                fuzz_assert(x->max_message == y->max_message && x->idle_timeout_ms == y->idle_timeout_ms);
        }
        for (size_t i = 0; i < a->n_connections; i++) {
                const HandoverConnection *x = &a->connections[i], *y = &b->connections[i];

                fuzz_assert(x->inode == y->inode && x->listener == y->listener && x->profile == y->profile);
                fuzz_assert(x->mode == y->mode && x->state == y->state);
                fuzz_assert(x->pending_acks == y->pending_acks && x->out_offset == y->out_offset);
                fuzz_assert(x->parser_partial == y->parser_partial && x->parser_cr == y->parser_cr);
                fuzz_assert(x->error_reply == y->error_reply && x->eof == y->eof);
                fuzz_assert(x->n_logged == y->n_logged && x->bytes_written == y->bytes_written);
                fuzz_assert(x->timer_remaining_ms == y->timer_remaining_ms);

                if (exact_clients) {
                        fuzz_assert(x->has_client == y->has_client);
                        if (x->has_client)
                                fuzz_assert(x->client_len == y->client_len &&
                                            memcmp(&x->client, &y->client, x->client_len) == 0);
                } else if (x->has_client) {
                        char shown[ADDRESS_STRING_MAX], again[ADDRESS_STRING_MAX];
                        struct sockaddr_storage ss;
                        socklen_t len;

                        sockaddr_format((const struct sockaddr *)&x->client, x->client_len, shown,
                                        sizeof shown);
                        fuzz_assert(y->has_client == (sockaddr_parse(shown, &ss, &len) == 0));
                        if (y->has_client) {
                                sockaddr_format((const struct sockaddr *)&y->client, y->client_len, again,
                                                sizeof again);
                                fuzz_assert(strcmp(shown, again) == 0);
                        }
                } else
                        fuzz_assert(!y->has_client);
        }
}

/* Formats s (which check() accepted) and parses the text back into *ret. */
static char *format_and_parse(const HandoverState *s, HandoverState *ret, size_t *ret_len) {
        char err[HANDOVER_ERROR_MAX];
        char *text = NULL;
        int r;

        fuzz_assert(handover_state_format(s, &text, ret_len) == 0);
        fuzz_assert(text && strlen(text) == *ret_len);
        r = handover_state_parse(text, *ret_len, ret, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "formatted state refused: %s\n%s", err, text);
        fuzz_assert(r == 0);
        return text;
}

static void check_text(const uint8_t *data, size_t size) {
        char err[HANDOVER_ERROR_MAX], small[17];
        HandoverState s, t;
        char *buf, *text;
        size_t len;
        int r;

        /* A copy of exactly the input's size, so that a read past it is caught. */
        buf = malloc(size > 0 ? size : 1);
        fuzz_assert(buf);
        if (size > 0)
                memcpy(buf, data, size);

        memset(&s, 0xaa, sizeof s);
        r = handover_state_parse(buf, size, &s, err, sizeof err);
        if (r < 0) {
                fuzz_assert(r == -EBADMSG);
                fuzz_assert(state_is_empty(&s));
                assert_printable_line(err, sizeof err);
                /* A short buffer gets the start of the same reason. */
                fuzz_assert(handover_state_parse(buf, size, &s, small, sizeof small) == -EBADMSG);
                fuzz_assert(strlen(small) < sizeof small && strncmp(small, err, sizeof small - 1) == 0);
                fuzz_assert(handover_state_parse(buf, size, &s, NULL, 0) == -EBADMSG);
                free(buf);
                return;
        }

        fuzz_assert(handover_state_check(&s, err, sizeof err) == 0);
        text = format_and_parse(&s, &t, &len);
        fuzz_assert(len == size && memcmp(text, data, size) == 0);
        assert_states_equal(&s, &t, true);
        for (size_t i = 0; i < s.n_connections; i++)
                fuzz_assert(handover_state_find(&s, s.connections[i].inode) == &s.connections[i]);

        free(text);
        handover_state_done(&t);
        handover_state_done(&s);
        free(buf);
}

/* ---- The input as a recipe for a state. */

typedef struct Recipe {
        const uint8_t *data;
        size_t size, pos;
} Recipe;

static uint8_t take(Recipe *r) {
        return r->pos < r->size ? r->data[r->pos++] : 0;
}

static uint32_t take32(Recipe *r) {
        uint32_t v = 0;

        for (unsigned i = 0; i < 4; i++)
                v = v << 8 | take(r);
        return v;
}

static void take_bytes(Recipe *r, void *out, size_t n) {
        for (size_t i = 0; i < n; i++)
                ((uint8_t *)out)[i] = take(r);
}

/* A value near the edges of [0, max] more often than not. */
static uint64_t take_edge(Recipe *r, uint64_t max) {
        uint8_t b = take(r);

        switch (b & 3) {
        case 0:
                return b >> 2;
        case 1:
                return max - MIN(max, (uint64_t)(b >> 2));
        default:
                return take32(r) % (max + 1);
        }
}

static void take_client(Recipe *r, HandoverConnection *c) {
        static const sa_family_t families[] = { AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC, AF_PACKET };
        uint8_t b = take(r);

        c->has_client = b & 1;
        if (!c->has_client)
                return;
        c->client_len = (socklen_t)(take(r) % (sizeof c->client + 2));
        take_bytes(r, &c->client, MIN((size_t)c->client_len, sizeof c->client));
        c->client.ss_family = families[(b >> 1) % ELEMENTSOF(families)];
}

static void take_connection(Recipe *r, HandoverState *s, uint64_t inode) {
        HandoverConnection *c;
        uint8_t b;

        fuzz_assert(handover_state_add_connection(s, &c) == 0);
        c->inode = inode;
        c->listener = take(r) % (s->n_listeners + 1);
        c->profile = take(r) % (s->n_profiles + 1);
        c->mode = c->listener < s->n_listeners ? s->listeners[c->listener].mode : take(r);
        b = take(r);
        c->state = b & 1;
        c->parser_cr = b & 2;
        c->eof = b & 4;
        c->error_reply = (b >> 3) % 4;
        c->pending_acks = (uint32_t)take_edge(r, UINT32_MAX);
        c->out_offset = take(r) % 24;
        c->parser_partial = (uint32_t)take_edge(r, ACK_MESSAGE_MAX + 2);
        c->n_logged = take(r);
        c->bytes_written = take32(r);
        c->timer_remaining_ms = take_edge(r, HANDOVER_IDLE_TIMEOUT_MAX_MS + 1);
        take_client(r, c);
}

/* Mostly valid states, with every way to be invalid still reachable. */
static void build_state(Recipe *r, HandoverState *s) {
        size_t n_listeners = take(r) % 5, n_profiles = take(r) % 4, n_connections = take(r) % 9;
        uint64_t inode = take_edge(r, UINT64_MAX / 2);

        for (size_t i = 0; i < n_listeners; i++) {
                HandoverListener *l;
                size_t n = take(r);

                fuzz_assert(handover_state_add_listener(s, &l) == 0);
                l->mode = take(r) % 3;
                l->proxy = n & 1;
                n = n == 255 ? sizeof l->name : n % 48;
                take_bytes(r, l->name, n);
                if (n < sizeof l->name)
                        l->name[n] = '\0';
        }
        for (size_t i = 0; i < n_profiles; i++) {
                HandoverProfile *p;

                fuzz_assert(handover_state_add_profile(s, &p) == 0);
                p->ack_len = take(r);
                p->ack_len = p->ack_len == 255 ? ACK_TEXT_MAX + 1 : p->ack_len % 12;
                take_bytes(r, p->ack, MIN(p->ack_len, ACK_TEXT_MAX));
                p->max_message = take_edge(r, ACK_MESSAGE_MAX + 1);
                p->idle_timeout_ms = take_edge(r, HANDOVER_IDLE_TIMEOUT_MAX_MS + 1);
        }
        for (size_t i = 0; i < n_connections; i++) {
                /* Ascending, mostly: a step of 0 repeats an inode. */
                inode += take(r) % 4;
                take_connection(r, s, inode);
        }
}

static void check_recipe(const uint8_t *data, size_t size) {
        Recipe r = { .data = data, .size = size };
        char err[HANDOVER_ERROR_MAX];
        HandoverState s = { 0 }, t;
        char *text = NULL;
        size_t len;

        build_state(&r, &s);
        if (handover_state_check(&s, err, sizeof err) < 0) {
                assert_printable_line(err, sizeof err);
                fuzz_assert(handover_state_format(&s, &text, &len) == -EINVAL && !text);
        } else {
                text = format_and_parse(&s, &t, &len);
                assert_states_equal(&s, &t, false);
                free(text);
                handover_state_done(&t);
        }
        handover_state_done(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_text(data, size);
        if (size > 0 && data[0] != 'a')
                check_recipe(data + 1, size - 1);
        return 0;
}
