/* SPDX-License-Identifier: MIT */
/*
 * The restart handover's state (handover-state.c): what it writes, that every
 * field survives a round trip at its bounds, and that the parser refuses, with
 * the right reason and nothing allocated, every way a state can be broken.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "handover-state.h"
#include "macro.h"

/* ---- Building states. */

static HandoverListener *add_listener(HandoverState *s, const char *name, ProtocolMode mode, bool proxy) {
        HandoverListener *l;

        ck_assert_int_eq(handover_state_add_listener(s, &l), 0);
        ck_assert_uint_lt(strlen(name), sizeof l->name);
        strcpy(l->name, name);
        l->mode = (uint8_t)mode;
        l->proxy = proxy;
        return l;
}

static HandoverProfile *add_profile(HandoverState *s, const char *ack, uint64_t max_message,
                                    uint64_t idle_ms) {
        HandoverProfile *p;

        ck_assert_int_eq(handover_state_add_profile(s, &p), 0);
        p->ack_len = strlen(ack);
        ck_assert_uint_le(p->ack_len, ACK_TEXT_MAX);
        memcpy(p->ack, ack, p->ack_len + 1);
        p->max_message = max_message;
        p->idle_timeout_ms = idle_ms;
        return p;
}

/* A line connection reading, nothing owed, on listener l and profile p. */
static HandoverConnection *add_connection(HandoverState *s, uint64_t inode, uint32_t l, uint32_t p) {
        HandoverConnection *c;

        ck_assert_int_eq(handover_state_add_connection(s, &c), 0);
        c->inode = inode;
        c->listener = l;
        c->profile = p;
        c->mode = s->listeners[l].mode;
        c->state = HANDOVER_READING;
        return c;
}

static void set_client(HandoverConnection *c, const char *printed) {
        ck_assert_msg(sockaddr_parse(printed, &c->client, &c->client_len) == 0, "'%s'", printed);
        c->has_client = true;
}

/*
 * Every kind of listener and profile, and connections in every shape the daemon
 * leaves them: the base of most cases below, which edit its text. Line numbers:
 * 1 version, 2-4 listeners, 5-6 profiles, 7-11 connections, 12 end.
 */
static void base_state(HandoverState *s) {
        HandoverConnection *c;

        *s = (HandoverState){ 0 };
        add_listener(s, "[::]:9998", PROTOCOL_LINE, false);
        add_listener(s, "unix:/run/ackd.sock", PROTOCOL_ONESHOT, true);
        add_listener(s, "127.0.0.1:9999", PROTOCOL_LINE, true);
        add_profile(s, "ACK!", 1024, 30000);
        add_profile(s, "OK then", 10, 5000);

        /* Reading, with acks still going out and a message half received. */
        c = add_connection(s, 100, 0, 0);
        c->pending_acks = 2;
        c->out_offset = 3;
        c->parser_partial = 17;
        c->n_logged = 5;
        c->bytes_written = 1840;
        c->timer_remaining_ms = 29120;

        /* A oneshot connection waiting for its message, from behind a proxy. */
        c = add_connection(s, 200, 1, 1);
        c->timer_remaining_ms = 4999;
        set_client(c, "192.0.2.7:40522");

        /* Over max-connections: part of "ERR busy\n" written. */
        c = add_connection(s, 300, 2, 1);
        c->state = HANDOVER_REPLYING;
        c->error_reply = HANDOVER_ERROR_BUSY;
        c->rejected = true;
        c->out_offset = 8;
        c->timer_remaining_ms = 100;

        /* A message too long after three that are owed, with a CR seen before it. */
        c = add_connection(s, 400, 0, 1);
        c->state = HANDOVER_REPLYING;
        c->pending_acks = 3;
        c->out_offset = 7;
        c->parser_partial = 11;
        c->parser_cr = true;
        c->error_reply = HANDOVER_ERROR_TOO_LONG;
        c->n_logged = 17;
        c->bytes_written = UINT32_MAX;

        /* The peer finished sending; one ack still owed. */
        c = add_connection(s, 500, 2, 0);
        c->state = HANDOVER_REPLYING;
        c->pending_acks = 1;
        c->eof = true;
        c->n_logged = 255;
        c->bytes_written = 1;
        c->timer_remaining_ms = 30000;
        set_client(c, "[2001:db8::7]:1");
}

static const char base_text[] =
        "ackd-handover 1\n"
        "listener 0 mode=line proxy=0 name=[::]:9998\n"
        "listener 1 mode=oneshot proxy=1 name=unix:/run/ackd.sock\n"
        "listener 2 mode=line proxy=1 name=127.0.0.1:9999\n"
        "profile 0 max-message=1024 idle-timeout-ms=30000 ack=ACK!\n"
        "profile 1 max-message=10 idle-timeout-ms=5000 ack=OK\\x20then\n"
        "connection inode=100 listener=0 profile=0 mode=line state=reading acks=2 offset=3 partial=17 cr=0 "
        "error=none eof=0 rejected=0 logged=5 written=1840 timer-ms=29120\n"
        "connection inode=200 listener=1 profile=1 mode=oneshot state=reading acks=0 offset=0 partial=0 "
        "cr=0 "
        "error=none eof=0 rejected=0 logged=0 written=0 timer-ms=4999 client=192.0.2.7:40522\n"
        "connection inode=300 listener=2 profile=1 mode=line state=replying acks=0 offset=8 partial=0 cr=0 "
        "error=busy eof=0 rejected=1 logged=0 written=0 timer-ms=100\n"
        "connection inode=400 listener=0 profile=1 mode=line state=replying acks=3 offset=7 partial=11 cr=1 "
        "error=too-long eof=0 rejected=0 logged=17 written=4294967295 timer-ms=0\n"
        "connection inode=500 listener=2 profile=0 mode=line state=replying acks=1 offset=0 partial=0 cr=0 "
        "error=none eof=1 rejected=0 logged=255 written=1 timer-ms=30000 client=[2001:db8::7]:1\n"
        "end listeners=3 profiles=2 connections=5\n";

/* ---- Comparing. */

static void assert_states_equal(const HandoverState *a, const HandoverState *b) {
        ck_assert_uint_eq(a->n_listeners, b->n_listeners);
        ck_assert_uint_eq(a->n_profiles, b->n_profiles);
        ck_assert_uint_eq(a->n_connections, b->n_connections);
        for (size_t i = 0; i < a->n_listeners; i++) {
                const HandoverListener *x = &a->listeners[i], *y = &b->listeners[i];

                ck_assert_str_eq(x->name, y->name);
                ck_assert_uint_eq(x->mode, y->mode);
                ck_assert_uint_eq(x->proxy, y->proxy);
        }
        for (size_t i = 0; i < a->n_profiles; i++) {
                const HandoverProfile *x = &a->profiles[i], *y = &b->profiles[i];

                ck_assert_uint_eq(x->ack_len, y->ack_len);
                ck_assert_mem_eq(x->ack, y->ack, x->ack_len);
                ck_assert_uint_eq(y->ack[y->ack_len], '\0');
                ck_assert_uint_eq(x->max_message, y->max_message);
                ck_assert_uint_eq(x->idle_timeout_ms, y->idle_timeout_ms);
        }
        for (size_t i = 0; i < a->n_connections; i++) {
                const HandoverConnection *x = &a->connections[i], *y = &b->connections[i];

                ck_assert_uint_eq(x->inode, y->inode);
                ck_assert_uint_eq(x->listener, y->listener);
                ck_assert_uint_eq(x->profile, y->profile);
                ck_assert_uint_eq(x->mode, y->mode);
                ck_assert_uint_eq(x->state, y->state);
                ck_assert_uint_eq(x->pending_acks, y->pending_acks);
                ck_assert_uint_eq(x->out_offset, y->out_offset);
                ck_assert_uint_eq(x->parser_partial, y->parser_partial);
                ck_assert_uint_eq(x->parser_cr, y->parser_cr);
                ck_assert_uint_eq(x->error_reply, y->error_reply);
                ck_assert_uint_eq(x->eof, y->eof);
                ck_assert_uint_eq(x->n_logged, y->n_logged);
                ck_assert_uint_eq(x->bytes_written, y->bytes_written);
                ck_assert_uint_eq(x->timer_remaining_ms, y->timer_remaining_ms);
                ck_assert_uint_eq(x->has_client, y->has_client);
                if (x->has_client) {
                        ck_assert_uint_eq(x->client_len, y->client_len);
                        ck_assert_mem_eq(&x->client, &y->client, x->client_len);
                }
        }
}

static bool state_is_empty(const HandoverState *s) {
        static const HandoverState empty = { 0 };

        return memcmp(s, &empty, sizeof *s) == 0;
}

/* Formats s, parses that, and checks that nothing changed; formatting again gives the
 * same text. Returns the text (to free). */
static char *assert_round_trip(const HandoverState *s) {
        HandoverState t;
        char err[HANDOVER_ERROR_MAX] = "", *text, *again;
        size_t len, again_len;

        ck_assert_msg(handover_state_check(s, err, sizeof err) == 0, "check: %s", err);
        ck_assert_int_eq(handover_state_format(s, &text, &len), 0);
        ck_assert_uint_eq(strlen(text), len);
        ck_assert_msg(handover_state_parse(text, len, &t, err, sizeof err) == 0, "%s\n%s", err, text);
        assert_states_equal(s, &t);
        ck_assert_int_eq(handover_state_format(&t, &again, &again_len), 0);
        ck_assert_str_eq(again, text);
        free(again);
        handover_state_done(&t);
        return text;
}

/* ---- Refusals. */

static void assert_text_rejected(const char *text, size_t len, const char *reason) {
        HandoverState s;
        char err[HANDOVER_ERROR_MAX] = "";
        int r;

        memset(&s, 0xaa, sizeof s);
        r = handover_state_parse(text, len, &s, err, sizeof err);
        ck_assert_msg(r == -EBADMSG, "accepted (%d), expected '%s':\n%.*s", r, reason, (int)len, text);
        ck_assert_msg(strstr(err, reason), "reason '%s', expected '%s'", err, reason);
        ck_assert_msg(state_is_empty(&s), "refused, but the state is not left empty");
}

/* base_text with `from`, which must be on line `line`, replaced by `to`. */
static void edit_base_text(unsigned line, const char *from, const char *to, char *out, size_t size) {
        const char *start = base_text, *hit;
        size_t n;

        for (unsigned i = 1; i < line; i++) {
                start = strchr(start, '\n');
                ck_assert_ptr_nonnull(start);
                start++;
        }
        hit = strstr(start, from);
        ck_assert_msg(hit && hit <= strchr(start, '\n'), "'%s' not on line %u", from, line);
        n = (size_t)(hit - base_text);
        ck_assert_uint_lt(n + strlen(to) + strlen(hit + strlen(from)), size);
        memcpy(out, base_text, n);
        strcpy(out + n, to);
        strcat(out, hit + strlen(from));
}

/* The edited base_text must be refused, with a reason that begins with "line N: " (N is
 * `reported`: where the edit shows, which may be a later line) and holds `reason`. */
static void assert_edit_rejected_at(unsigned line, const char *from, const char *to, unsigned reported,
                                    const char *reason) {
        char text[sizeof base_text + 4096], expected[HANDOVER_ERROR_MAX];

        edit_base_text(line, from, to, text, sizeof text);
        (void)snprintf(expected, sizeof expected, "line %u: ", reported);
        assert_text_rejected(text, strlen(text), expected);
        assert_text_rejected(text, strlen(text), reason);
}

static void assert_edit_rejected(unsigned line, const char *from, const char *to, const char *reason) {
        assert_edit_rejected_at(line, from, to, line, reason);
}

/* The edit is fine: the text still parses. */
static void assert_edit_accepted(unsigned line, const char *from, const char *to) {
        char text[sizeof base_text + 4096], err[HANDOVER_ERROR_MAX] = "";
        HandoverState s;

        edit_base_text(line, from, to, text, sizeof text);
        ck_assert_msg(handover_state_parse(text, strlen(text), &s, err, sizeof err) == 0, "%s", err);
        handover_state_done(&s);
}

/* ---- Round trips. */

START_TEST(test_format_writes_the_documented_text) {
        HandoverState s;
        char *text;

        base_state(&s);
        text = assert_round_trip(&s);
        ck_assert_str_eq(text, base_text);
        free(text);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_empty_state_round_trips) {
        HandoverState s = { 0 };
        char *text = assert_round_trip(&s);

        ck_assert_str_eq(text, "ackd-handover 1\nend listeners=0 profiles=0 connections=0\n");
        free(text);
}
END_TEST

START_TEST(test_round_trip_every_field_at_its_bounds) {
        HandoverState s = { 0 };
        HandoverConnection *c;
        char ack[ACK_TEXT_MAX + 1];
        char *text;

        add_listener(&s, "a", PROTOCOL_LINE, true);
        add_profile(&s, "!", 1, 1);
        memset(ack, '~', ACK_TEXT_MAX);
        ack[ACK_TEXT_MAX] = '\0';
        add_profile(&s, ack, ACK_MESSAGE_MAX, HANDOVER_IDLE_TIMEOUT_MAX_MS);

        /* Everything at its least. */
        c = add_connection(&s, 1, 0, 0);

        /* Everything at its most; the CR is not counted against max-message. */
        c = add_connection(&s, UINT64_MAX, 0, 1);
        c->state = HANDOVER_REPLYING;
        c->pending_acks = UINT32_MAX;
        c->out_offset = ACK_TEXT_MAX; /* the last byte of an ack: its LF */
        c->parser_partial = ACK_MESSAGE_MAX + 1;
        c->parser_cr = true;
        c->error_reply = HANDOVER_ERROR_TOO_LONG;
        c->n_logged = UINT8_MAX;
        c->bytes_written = UINT32_MAX;
        c->timer_remaining_ms = HANDOVER_IDLE_TIMEOUT_MAX_MS;
        set_client(c, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

        text = assert_round_trip(&s);
        ck_assert_ptr_nonnull(strstr(text, "inode=1 "));
        ck_assert_ptr_nonnull(
                strstr(text, "inode=18446744073709551615 listener=0 profile=1 mode=line "
                             "state=replying acks=4294967295 offset=255 partial=16777217 cr=1 "
                             "error=too-long eof=0 rejected=0 logged=255 written=4294967295 "
                             "timer-ms=86400000 client=[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535\n"));
        ck_assert_ptr_nonnull(strstr(text, "max-message=16777216 idle-timeout-ms=86400000 ack=~~~"));
        free(text);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_round_trip_full_tables) {
        HandoverState s = { 0 };
        HandoverListener *l;
        HandoverProfile *p;
        char name[32], *text;

        for (unsigned i = 0; i < HANDOVER_LISTENERS_MAX; i++) {
                (void)snprintf(name, sizeof name, "127.0.0.1:%u", 1000 + i);
                add_listener(&s, name, i % 2 ? PROTOCOL_LINE : PROTOCOL_ONESHOT, i % 3 == 0);
        }
        for (unsigned i = 0; i < HANDOVER_PROFILES_MAX; i++)
                add_profile(&s, "ACK!", 1 + i, 1000 + i);
        ck_assert_int_eq(handover_state_add_listener(&s, &l), -E2BIG);
        ck_assert_int_eq(handover_state_add_profile(&s, &p), -E2BIG);
        ck_assert_uint_eq(s.n_listeners, HANDOVER_LISTENERS_MAX);
        add_connection(&s, 7, HANDOVER_LISTENERS_MAX - 1, HANDOVER_PROFILES_MAX - 1);

        text = assert_round_trip(&s);
        ck_assert_ptr_nonnull(strstr(text, "listener 255 mode=line proxy=1 name=127.0.0.1:1255\n"));
        ck_assert_ptr_nonnull(strstr(text, "profile 255 max-message=256 idle-timeout-ms=1255 ack=ACK!\n"));
        ck_assert_ptr_nonnull(strstr(text, "listener=255 profile=255 "));
        ck_assert_ptr_nonnull(strstr(text, "end listeners=256 profiles=256 connections=1\n"));
        free(text);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_round_trip_every_kind_of_listener) {
        static const char *const names[] = {
                "[::]:9998",
                "0.0.0.0:1",
                "[fe80::1%eth0]:9999",
                "[::ffff:127.0.0.1]:7",
                "unix:/run/ackd/x.sock",
                "unix:@abstract",
                "fd 3",
        };
        HandoverState s = { 0 };
        char *text;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                add_listener(&s, names[i], PROTOCOL_ONESHOT, false);
                add_listener(&s, names[i], PROTOCOL_LINE, true);
        }
        text = assert_round_trip(&s);
        ck_assert_ptr_nonnull(strstr(text, "listener 13 mode=line proxy=1 name=fd\\x203\n"));
        ck_assert_ptr_nonnull(strstr(text, "listener 4 mode=oneshot proxy=0 name=[fe80::1%eth0]:9999\n"));
        free(text);
        handover_state_done(&s);
}
END_TEST

/* Every byte a name may hold (any but NUL), and the longest names, all of it escaped. */
START_TEST(test_escaping_of_hostile_names_and_acks) {
        HandoverState s = { 0 };
        HandoverListener *l;
        HandoverProfile *p;
        char ack[ACK_TEXT_MAX + 1];
        char *text;
        size_t n = 0;

        l = add_listener(&s, "x", PROTOCOL_LINE, false);
        for (unsigned c = 1; c < 256; c++)
                l->name[n++] = (char)c;
        l->name[n] = '\0';
        l = add_listener(&s, "x", PROTOCOL_LINE, false);
        memset(l->name, ' ', ADDRESS_STRING_MAX - 1);
        l->name[ADDRESS_STRING_MAX - 1] = '\0';
        add_listener(&s, "a b\\c\nd=e\"f\x7f\xff", PROTOCOL_LINE, false);
        add_listener(&s, "\\x41", PROTOCOL_LINE, false);

        /* --ack takes spaces, quotes, backslashes and bytes from 0x80 (UTF-8). */
        add_profile(&s, "ACK \"ok\" \\ \xc3\xa9", 1, 1);
        n = 0;
        for (unsigned c = 0x20; c < 256 && n < ACK_TEXT_MAX; c++)
                if (c != 0x7f)
                        ack[n++] = (char)c;
        ack[n] = '\0';
        p = add_profile(&s, ack, 1, 1);
        ck_assert_uint_eq(p->ack_len, 0xff - 0x20);

        text = assert_round_trip(&s);
        /* Nothing but printable ASCII, single spaces and LFs. */
        for (const char *c = text; *c; c++)
                ck_assert_msg((*c >= 0x20 && *c < 0x7f) || *c == '\n', "byte 0x%02x", (unsigned char)*c);
        ck_assert_ptr_null(strstr(text, "  "));
        ck_assert_ptr_nonnull(strstr(text, "name=a\\x20b\\\\c\\x0ad=e\"f\\x7f\\xff\n"));
        ck_assert_ptr_nonnull(strstr(text, "name=\\\\x41\n"));
        ck_assert_ptr_nonnull(strstr(text, "ack=ACK\\x20\"ok\"\\x20\\\\\\x20\\xc3\\xa9\n"));
        /* The longest line there is still fits. */
        for (const char *line = text; *line; line = strchr(line, '\n') + 1)
                ck_assert_uint_le((size_t)(strchr(line, '\n') - line), HANDOVER_LINE_MAX);
        free(text);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_round_trip_every_connection_shape) {
        HandoverState s;
        HandoverConnection *c;
        char *text;

        base_state(&s);
        /* Replying with nothing more owed: the next ackd shuts it down. */
        c = add_connection(&s, 600, 0, 0);
        c->state = HANDOVER_REPLYING;
        /* ERR message too long, partly written, no ack before it. */
        c = add_connection(&s, 700, 2, 0);
        c->state = HANDOVER_REPLYING;
        c->error_reply = HANDOVER_ERROR_TOO_LONG;
        c->out_offset = STRLEN(REPLY_ERR_TOO_LONG) - 1;
        /* A proxied connection whose header named no client (PROXY UNKNOWN). */
        c = add_connection(&s, 800, 1, 0);
        /* A partial message exactly max-message long, and one more with its CR. */
        c = add_connection(&s, 900, 0, 1);
        c->parser_partial = 10;
        c = add_connection(&s, 901, 0, 1);
        c->parser_partial = 11;
        c->parser_cr = true;
        c = add_connection(&s, 902, 0, 1);
        c->parser_partial = 1;
        c->parser_cr = true;

        text = assert_round_trip(&s);
        free(text);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_round_trip_client_addresses) {
        static const char *const clients[] = {
                "192.0.2.1:0", "[::1]:65535", "unix", "unix:/run/a b\\c", "unix:@", "unix:@name", "unix:rel",
        };
        HandoverState s = { 0 }, t;
        HandoverConnection *c;
        struct sockaddr_in6 *in6;
        struct sockaddr_un *un;
        char err[HANDOVER_ERROR_MAX], *text;
        size_t len;

        add_listener(&s, "[::]:1", PROTOCOL_LINE, true);
        add_profile(&s, "ACK!", 1, 1);
        for (size_t i = 0; i < ELEMENTSOF(clients); i++)
                set_client(add_connection(&s, 10 + i, 0, 0), clients[i]);
        text = assert_round_trip(&s);
        ck_assert_ptr_nonnull(strstr(text, " client=unix:/run/a\\x20b\\\\c\n"));
        ck_assert_ptr_nonnull(strstr(text, " client=unix\n"));
        free(text);

        /* As the daemon has them, straight from a PROXY header: kept as the log shows them. */
        c = add_connection(&s, 100, 0, 0);
        in6 = (struct sockaddr_in6 *)&c->client;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(7);
        in6->sin6_scope_id = 3;
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6->sin6_addr), 1);
        c->client_len = sizeof *in6;
        c->has_client = true;
        c = add_connection(&s, 101, 0, 0);
        un = (struct sockaddr_un *)&c->client;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, "/a\x01z", 4);
        c->client_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 5);
        c->has_client = true;
        /* Shown as "unix:" and "family-17": left out. */
        c = add_connection(&s, 102, 0, 0);
        un = (struct sockaddr_un *)&c->client;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, "\x01z", 3);
        c->client_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 3);
        c->has_client = true;
        c = add_connection(&s, 103, 0, 0);
        c->client.ss_family = 17;
        c->client_len = sizeof c->client;
        c->has_client = true;

        ck_assert_int_eq(handover_state_format(&s, &text, &len), 0);
        ck_assert_int_eq(handover_state_parse(text, len, &t, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(text, "inode=100 "));
        ck_assert_ptr_nonnull(strstr(text, " client=192.0.2.9:7\n"));
        ck_assert_ptr_nonnull(strstr(text, " client=unix:/a\n"));
        ck_assert_uint_eq(t.n_connections, ELEMENTSOF(clients) + 4);
        ck_assert_uint_eq(t.connections[ELEMENTSOF(clients)].client.ss_family, AF_INET);
        ck_assert(!t.connections[ELEMENTSOF(clients) + 2].has_client);
        ck_assert(!t.connections[ELEMENTSOF(clients) + 3].has_client);
        free(text);
        handover_state_done(&t);
        handover_state_done(&s);
}
END_TEST

START_TEST(test_sort_and_find) {
        static const uint64_t inodes[] = { 50, 7, UINT64_MAX, 1, 9000 };
        HandoverState s = { 0 };

        ck_assert_ptr_null(handover_state_find(&s, 1));
        add_listener(&s, "x", PROTOCOL_LINE, false);
        add_profile(&s, "ACK!", 1, 1);
        for (size_t i = 0; i < ELEMENTSOF(inodes); i++)
                add_connection(&s, inodes[i], 0, 0)->n_logged = (uint8_t)i;

        ck_assert_int_eq(handover_state_check(&s, NULL, 0), -EINVAL);
        handover_state_sort(&s);
        ck_assert_int_eq(handover_state_check(&s, NULL, 0), 0);
        for (size_t i = 1; i < s.n_connections; i++)
                ck_assert_uint_lt(s.connections[i - 1].inode, s.connections[i].inode);
        for (size_t i = 0; i < ELEMENTSOF(inodes); i++) {
                const HandoverConnection *c = handover_state_find(&s, inodes[i]);

                ck_assert_ptr_nonnull(c);
                ck_assert_uint_eq(c->inode, inodes[i]);
                ck_assert_uint_eq(c->n_logged, i);
        }
        ck_assert_ptr_null(handover_state_find(&s, 8));
        ck_assert_ptr_null(handover_state_find(&s, 0));
        handover_state_done(&s);
        handover_state_done(&s);
        handover_state_done(NULL);
}
END_TEST

/* ---- The parser refuses: the input as a whole. */

START_TEST(test_parse_rejects_bad_magic) {
        static const char *const bad[] = {
                "",
                "a",
                "ackd-handover",
                "ackd-handover\n",
                "ACKD-HANDOVER 1\n",
                " ackd-handover 1\n",
                "ackd-handovers 1\n",
                "\xef\xbb\xbf"
                "ackd-handover 1\n",
                "\x7f"
                "ELF",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_text_rejected(bad[i], strlen(bad[i]), "not an ackd handover state");
        assert_text_rejected("\0ackd-handover 1\n", 17, "not an ackd handover state");
}
END_TEST

START_TEST(test_parse_rejects_unknown_version) {
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover 2",
                             "version 2, but this ackd reads version 1");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover 0", "version 0");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover 99999999999999999999",
                             "expected \"ackd-handover 1\"");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover 01", "expected \"ackd-handover 1\"");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover x", "expected \"ackd-handover 1\"");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover 1 1", "expected \"ackd-handover 1\"");
        assert_edit_rejected(1, "ackd-handover 1", "ackd-handover  1", "empty field");
}
END_TEST

/* Cut short anywhere: at a line boundary there is no end line, elsewhere no newline. */
START_TEST(test_parse_rejects_truncation_everywhere) {
        size_t len = strlen(base_text);
        unsigned boundaries = 0;

        for (size_t n = 0; n < len; n++) {
                if (n < STRLEN("ackd-handover "))
                        assert_text_rejected(base_text, n, "not an ackd handover state");
                else if (base_text[n - 1] == '\n') {
                        assert_text_rejected(base_text, n, "truncated: no end line");
                        boundaries++;
                } else
                        assert_text_rejected(base_text, n, "no newline at its end (truncated?)");
        }
        ck_assert_uint_eq(boundaries, 11);
}
END_TEST

START_TEST(test_parse_rejects_trailing_garbage) {
        char text[sizeof base_text + 64];

        static const char *const tails[] = { "x", "\n", " ", "end listeners=3 profiles=2 connections=5\n",
                                             "\0" };

        for (size_t i = 0; i < ELEMENTSOF(tails); i++) {
                size_t n = strlen(base_text), k = strlen(tails[i]) + (tails[i][0] == '\0');

                memcpy(text, base_text, n);
                memcpy(text + n, tails[i], k);
                assert_text_rejected(text, n + k, "line 13: text after the end line");
        }
        assert_edit_rejected(12, "connections=5\n", "connections=5 \n", "empty field");
        assert_edit_rejected(12, "connections=5\n", "connections=5\r\n", "byte 0x0d");
}
END_TEST

/* A NUL anywhere in place of a byte of the text. */
START_TEST(test_parse_rejects_nul_bytes) {
        char text[sizeof base_text];
        size_t len = strlen(base_text);

        for (size_t i = STRLEN("ackd-handover "); i < len; i++) {
                memcpy(text, base_text, len);
                text[i] = '\0';
                assert_text_rejected(text, len, i == len - 1 ? "no newline at its end" : "NUL byte");
        }
        assert_edit_rejected(2, "name=[::]:9998", "name=[::]:99\\x008", "name: NUL byte");
}
END_TEST

START_TEST(test_parse_rejects_raw_bytes_that_need_escaping) {
        assert_edit_rejected(2, "name=[::]:9998", "name=[::]:99\t98", "byte 0x09");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\x7f", "byte 0x7f");
        assert_edit_rejected(5, "ack=ACK!", "ack=\xc3\xa9", "byte 0xc3");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\r", "byte 0x0d");
        assert_edit_rejected(7, "connection", "connection\v", "byte 0x0b");
}
END_TEST

START_TEST(test_parse_rejects_overlong_lines) {
        char text[sizeof base_text + 2 * HANDOVER_LINE_MAX];
        char name[HANDOVER_LINE_MAX + 8];
        size_t n;

        /* A line of HANDOVER_LINE_MAX bytes is still read (and refused for what it says). */
        n = HANDOVER_LINE_MAX - STRLEN("listener 0 mode=line proxy=0 name=");
        memset(name, 'a', n);
        name[n] = '\0';
        (void)snprintf(text, sizeof text, "ackd-handover 1\nlistener 0 mode=line proxy=0 name=%s\n", name);
        assert_text_rejected(text, strlen(text), "line 2: listener: name: too long");
        name[n] = 'a';
        name[n + 1] = '\0';
        (void)snprintf(text, sizeof text, "ackd-handover 1\nlistener 0 mode=line proxy=0 name=%s\n", name);
        assert_text_rejected(text, strlen(text), "line 2: longer than 2048 bytes");
        /* With no newline at all, it is still a line too long, not a truncation. */
        assert_text_rejected(text, strlen(text) - 1, "line 2: longer than 2048 bytes");

        /* Names one and two bytes longer than a listener name holds; then the longest. */
        memset(name, 'a', ADDRESS_STRING_MAX + 1);
        name[ADDRESS_STRING_MAX + 1] = '\0';
        (void)snprintf(text, sizeof text, "ackd-handover 1\nlistener 0 mode=line proxy=0 name=%s\n", name);
        assert_text_rejected(text, strlen(text), "line 2: listener: name: too long");
        name[ADDRESS_STRING_MAX] = '\0';
        (void)snprintf(text, sizeof text, "ackd-handover 1\nlistener 0 mode=line proxy=0 name=%s\n", name);
        assert_text_rejected(text, strlen(text), "line 2: listener: name: too long");
        name[ADDRESS_STRING_MAX - 1] = '\0';
        (void)snprintf(text, sizeof text,
                       "ackd-handover 1\nlistener 0 mode=line proxy=0 name=%s\nend listeners=1 profiles=0 "
                       "connections=0\n",
                       name);
        {
                char err[HANDOVER_ERROR_MAX];
                HandoverState s;

                ck_assert_msg(handover_state_parse(text, strlen(text), &s, err, sizeof err) == 0, "%s", err);
                ck_assert_uint_eq(strlen(s.listeners[0].name), ADDRESS_STRING_MAX - 1);
                handover_state_done(&s);
        }
}
END_TEST

START_TEST(test_parse_rejects_empty_lines_and_fields) {
        assert_edit_rejected(5, "profile 0 max-message=1024 idle-timeout-ms=30000 ack=ACK!\n", "\n",
                             "line 5: empty line");
        assert_edit_rejected(7, "connection inode=100", "connection  inode=100", "empty field");
        assert_edit_rejected(7, "connection inode=100", " connection inode=100", "empty field");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=29120 ", "empty field");
        assert_edit_rejected(7, "connection inode=100", "connection inode=100 a b c d e f g h",
                             "more than 20 fields");
}
END_TEST

/* ---- The parser refuses: lines and keys. */

START_TEST(test_parse_rejects_unknown_lines) {
        assert_edit_rejected(2, "listener 0", "listeners 0", "unknown line 'listeners'");
        assert_edit_rejected(7, "connection inode=100", "Connection inode=100", "unknown line 'Connection'");
        assert_edit_rejected(12, "end ", "End ", "unknown line 'End'");
        assert_edit_rejected(12, "end ", "# comment\nend ", "unknown line '#'");
}
END_TEST

START_TEST(test_parse_rejects_lines_out_of_order) {
        assert_edit_rejected_at(2, "listener 0",
                                "profile 0 max-message=1 idle-timeout-ms=1 ack=A\nlistener 0", 3,
                                "listener: after the profiles");
        assert_edit_rejected(6, "profile 1", "listener 3 mode=line proxy=0 name=x\nprofile 1",
                             "listener: after the profiles");
        assert_edit_rejected(8, "connection inode=200",
                             "listener 3 mode=line proxy=0 name=x\nconnection inode=200",
                             "listener: after the connections");
        assert_edit_rejected(12, "end ", "profile 2 max-message=1 idle-timeout-ms=1 ack=A\nend ",
                             "profile: after the connections");
}
END_TEST

START_TEST(test_parse_rejects_bad_indexes) {
        assert_edit_rejected(2, "listener 0", "listener 1", "listener: index 1, expected 0");
        assert_edit_rejected(3, "listener 1", "listener 0", "listener: index 0, expected 1");
        assert_edit_rejected(3, "listener 1", "listener 01", "index=01: not a number");
        assert_edit_rejected(3, "listener 1", "listener", "listener: missing index");
        assert_edit_rejected(3, "listener 1", "listener mode=line", "listener: missing index");
        assert_edit_rejected(6, "profile 1", "profile 2", "profile: index 2, expected 1");
        assert_edit_rejected(6, "profile 1", "profile 256", "profile: index=256: out of range (0..255)");
        assert_edit_rejected(6, "profile 1", "profile -1", "profile: index=-1: not a number");
}
END_TEST

START_TEST(test_parse_rejects_unknown_keys) {
        assert_edit_rejected(2, "proxy=0", "proxy=0 port=1", "listener: unknown key 'port'");
        assert_edit_rejected(2, "name=[::]:9998", "name=[::]:9998 port=1", "listener: unknown key 'port'");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=29120 color=blue",
                             "connection: unknown key 'color'");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=29120 client=1.2.3.4:5 x=1",
                             "connection: unknown key 'x'");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=192.0.2.7:40522 x=1",
                             "connection: unknown key 'x'");
        assert_edit_rejected(7, "inode=100", "Inode=100", "connection: unknown key 'Inode'");
        assert_edit_rejected(12, "connections=5", "connections=5 more=1", "end: unknown key 'more'");
        assert_edit_rejected(7, "inode=100", "inode", "connection: 'inode': expected key=value");
        assert_edit_rejected(7, "inode=100", "=100", "connection: unknown key ''");
}
END_TEST

START_TEST(test_parse_rejects_missing_keys) {
        assert_edit_rejected(2, " proxy=0", "", "listener: missing key 'proxy'");
        assert_edit_rejected(2, " name=[::]:9998", "", "listener: missing key 'name'");
        assert_edit_rejected(5, " ack=ACK!", "", "profile: missing key 'ack'");
        assert_edit_rejected(5, "max-message=1024 ", "", "profile: missing key 'max-message'");
        assert_edit_rejected(7, "inode=100 ", "", "connection: missing key 'inode'");
        assert_edit_rejected(7, " acks=2", "", "connection: missing key 'acks'");
        assert_edit_rejected(7, " timer-ms=29120", "", "connection: missing key 'timer-ms'");
        assert_edit_rejected(12, " connections=5", "", "end: missing key 'connections'");
        assert_edit_rejected(12, " listeners=3 profiles=2 connections=5", "",
                             "end: missing key 'listeners'");
        /* Two keys swapped: the first one expected is missing where it belongs. */
        assert_edit_rejected(7, "acks=2 offset=3", "offset=3 acks=2",
                             "connection: missing key 'acks' (keys go in a fixed order)");
}
END_TEST

START_TEST(test_parse_rejects_duplicated_keys) {
        assert_edit_rejected(2, "proxy=0", "proxy=0 proxy=0", "listener: key 'proxy' twice");
        assert_edit_rejected(7, "acks=2", "acks=2 acks=2", "connection: key 'acks' twice");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=29120 timer-ms=29120",
                             "connection: key 'timer-ms' twice");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=192.0.2.7:40522 client=192.0.2.7:40522",
                             "connection: key 'client' twice");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=192.0.2.7:40522 inode=1",
                             "key 'inode' twice");
        assert_edit_rejected(12, "connections=5", "connections=5 connections=5",
                             "end: key 'connections' twice");
}
END_TEST

/* ---- The parser refuses: values. */

typedef struct BadValue {
        unsigned line;
        const char *from, *to, *reason;
} BadValue;

START_TEST(test_parse_rejects_every_numeric_field_out_of_range) {
        static const BadValue bad[] = {
                { 2, "proxy=0", "proxy=2", "listener: proxy=2: out of range (0..1)" },
                { 5, "max-message=1024", "max-message=0",
                  "profile: max-message=0: out of range (1..16777216)" },
                { 5, "max-message=1024", "max-message=16777217", "max-message=16777217: out of range" },
                { 5, "idle-timeout-ms=30000", "idle-timeout-ms=0",
                  "idle-timeout-ms=0: out of range (1..86400000)" },
                { 5, "idle-timeout-ms=30000", "idle-timeout-ms=86400001",
                  "idle-timeout-ms=86400001: out of range" },
                { 7, "inode=100", "inode=0", "connection: inode=0: out of range (1..18446744073709551615)" },
                { 7, "inode=100", "inode=18446744073709551616", "inode=18446744073709551616: out of range" },
                { 7, "listener=0", "listener=256", "listener=256: out of range (0..255)" },
                { 7, "profile=0", "profile=256", "profile=256: out of range (0..255)" },
                { 7, "acks=2", "acks=4294967296", "acks=4294967296: out of range (0..4294967295)" },
                { 7, "offset=3", "offset=4294967296", "offset=4294967296: out of range (0..4294967295)" },
                { 7, "partial=17", "partial=16777218", "partial=16777218: out of range (0..16777217)" },
                { 7, "cr=0", "cr=2", "cr=2: out of range (0..1)" },
                { 7, "eof=0", "eof=2", "eof=2: out of range (0..1)" },
                { 7, "logged=5", "logged=256", "logged=256: out of range (0..255)" },
                { 7, "written=1840", "written=4294967296",
                  "written=4294967296: out of range (0..4294967295)" },
                { 7, "timer-ms=29120", "timer-ms=86400001",
                  "timer-ms=86400001: out of range (0..86400000)" },
                { 12, "listeners=3", "listeners=257", "end: listeners=257: out of range (0..256)" },
                { 12, "profiles=2", "profiles=257", "end: profiles=257: out of range (0..256)" },
                { 12, "connections=5", "connections=1000001",
                  "end: connections=1000001: out of range (0..1000000)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_edit_rejected(bad[i].line, bad[i].from, bad[i].to, bad[i].reason);
}
END_TEST

START_TEST(test_parse_rejects_numbers_in_other_spellings) {
        static const char *const spellings[] = { "-1", "+2", "02",  "00", "0x2", "2.0",
                                                 "2 ", "",   "two", "2k", "١" };

        for (size_t i = 0; i < ELEMENTSOF(spellings); i++) {
                char to[32], reason[64];

                (void)snprintf(to, sizeof to, "acks=%s", spellings[i]);
                (void)snprintf(reason, sizeof reason, "acks=%s: not a number", spellings[i]);
                if (strchr(spellings[i], ' '))
                        assert_edit_rejected(7, "acks=2", to, "empty field");
                else if ((unsigned char)spellings[i][0] >= 0x80)
                        assert_edit_rejected(7, "acks=2", to, "byte 0xd9");
                else
                        assert_edit_rejected(7, "acks=2", to, reason);
        }
        assert_edit_rejected(12, "listeners=3", "listeners=03", "end: listeners=03: not a number");
}
END_TEST

START_TEST(test_parse_rejects_unknown_names) {
        assert_edit_rejected(2, "mode=line", "mode=tcp",
                             "listener: mode=tcp: expected oneshot, line or metrics");
        assert_edit_rejected(2, "mode=line", "mode=LINE", "mode=LINE: expected oneshot, line or metrics");
        assert_edit_rejected(7, "mode=line", "mode=", "mode=: expected oneshot, line or metrics");
        assert_edit_rejected(7, "state=reading", "state=lingering",
                             "state=lingering: expected reading, replying, linger or header");
        assert_edit_rejected(7, "error=none", "error=toolong",
                             "error=toolong: expected none, busy or too-long");
}
END_TEST

START_TEST(test_parse_rejects_bad_escapes) {
        assert_edit_rejected(5, "ack=ACK!", "ack=\\x41CK!",
                             "ack: \\xNN for a byte that is written otherwise");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\x5c",
                             "ack: \\xNN for a byte that is written otherwise");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\x2", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\x", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\n", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\X20", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\xC3", "ack: bad escape");
        assert_edit_rejected(5, "ack=ACK!", "ack=ACK\\xg0", "ack: bad escape");
        assert_edit_rejected(2, "name=[::]:9998", "name=\\\\\\", "name: bad escape");
        assert_edit_accepted(5, "ack=ACK!", "ack=\\\\\\xc3\\xa9\\x20");
}
END_TEST

START_TEST(test_parse_rejects_bad_names_and_acks) {
        char ack[ACK_TEXT_MAX + 8] = "ack=";

        assert_edit_rejected(2, "name=[::]:9998", "name=", "listener: name: empty");
        assert_edit_rejected(2, "name=[::]:9998", "name=\\x00", "listener: name: NUL byte");
        assert_edit_rejected(5, "ack=ACK!", "ack=", "profile: ack: expected 1 to 255 bytes");
        assert_edit_rejected(5, "ack=ACK!", "ack=\\x0a", "profile: ack: control byte");
        assert_edit_rejected(5, "ack=ACK!", "ack=A\\x00", "profile: ack: control byte");
        assert_edit_rejected(5, "ack=ACK!", "ack=A\\x1f", "profile: ack: control byte");
        assert_edit_rejected(5, "ack=ACK!", "ack=A\\x7f", "profile: ack: control byte");
        memset(ack + 4, 'a', ACK_TEXT_MAX + 1);
        ack[4 + ACK_TEXT_MAX + 1] = '\0';
        assert_edit_rejected(5, "ack=ACK!", ack, "profile: ack: expected 1 to 255 bytes");
        ack[4 + ACK_TEXT_MAX] = '\0';
        assert_edit_accepted(5, "ack=ACK!", ack);
        assert_edit_accepted(5, "ack=ACK!", "ack=A\\x20\\x80\\xff");
}
END_TEST

START_TEST(test_parse_rejects_bad_client_addresses) {
        assert_edit_rejected(8, "client=192.0.2.7:40522",
                             "client=", "client: not an address as ackd shows one");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=unknown", "client: not an address");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=[::ffff:192.0.2.7]:1",
                             "client: not an address");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=192.0.2.7:040522",
                             "client: not an address");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=unix:\\x01", "client: not an address");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=unix:/\\x00", "client: not an address");
        assert_edit_rejected(8, "client=192.0.2.7:40522", "client=unix:/x\\", "client: bad escape");
        assert_edit_accepted(8, "client=192.0.2.7:40522", "client=unix:/a\\x20b");
        assert_edit_accepted(8, " client=192.0.2.7:40522", "");
}
END_TEST

/* ---- The parser refuses: records that disagree with each other. */

START_TEST(test_parse_rejects_dangling_indexes) {
        assert_edit_rejected(7, "listener=0", "listener=3", "connection: listener: no such listener");
        assert_edit_rejected(7, "listener=0", "listener=255", "connection: listener: no such listener");
        assert_edit_rejected(7, "profile=0", "profile=2", "connection: profile: no such profile");
}
END_TEST

START_TEST(test_parse_rejects_duplicate_and_unordered_inodes) {
        assert_edit_rejected(8, "inode=200", "inode=100", "connection: inode 100 twice (also on line 7)");
        assert_edit_rejected(8, "inode=200", "inode=99",
                             "connection: inode 99 below the previous connection's");
        assert_edit_rejected(11, "inode=500", "inode=400", "inode 400 twice (also on line 10)");
        assert_edit_accepted(8, "inode=200", "inode=101");
}
END_TEST

START_TEST(test_parse_rejects_counts_that_disagree_with_the_end_line) {
        assert_edit_rejected(12, "listeners=3", "listeners=2", "end: listeners=2, but 3 listener lines");
        assert_edit_rejected(12, "listeners=3", "listeners=4", "end: listeners=4, but 3 listener lines");
        assert_edit_rejected(12, "profiles=2", "profiles=0", "end: profiles=0, but 2 profile lines");
        assert_edit_rejected(12, "connections=5", "connections=4",
                             "end: connections=4, but 5 connection lines");
        assert_edit_rejected(12, "connections=5", "connections=6",
                             "end: connections=6, but 5 connection lines");
        /* A connection line lost in the middle. */
        assert_edit_rejected_at(
                9,
                "connection inode=300 listener=2 profile=1 mode=line state=replying acks=0 "
                "offset=8 partial=0 cr=0 error=busy eof=0 rejected=1 logged=0 written=0 timer-ms=100\n",
                "", 11, "end: connections=5, but 4 connection lines");
}
END_TEST

START_TEST(test_parse_rejects_connections_inconsistent_with_listener_or_profile) {
        assert_edit_rejected(7, "mode=line", "mode=oneshot", "connection: mode: not its listener's");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=29120 client=1.2.3.4:5",
                             "client: its listener takes no PROXY header");
        assert_edit_rejected(7, "timer-ms=29120", "timer-ms=30001", "timer-ms: beyond its timer's duration");
        assert_edit_accepted(7, "timer-ms=29120", "timer-ms=30000");
        assert_edit_rejected(7, "partial=17", "partial=1025", "partial: beyond its profile's max-message");
        assert_edit_accepted(7, "partial=17", "partial=1024");
        assert_edit_accepted(7, "partial=17 cr=0", "partial=1025 cr=1");
        assert_edit_rejected(7, "partial=17 cr=0", "partial=1026 cr=1",
                             "partial: beyond its profile's max-message");
        assert_edit_rejected(7, "partial=17 cr=0", "partial=0 cr=1", "cr: set without a partial message");
        /* The unit of a reply: profile 1's "OK then" and its LF, 8 bytes. */
        assert_edit_accepted(10, "offset=7", "offset=0");
        assert_edit_rejected(10, "offset=7", "offset=8", "connection: offset: not within the reply owed");
        assert_edit_rejected(7, "offset=3", "offset=5", "offset: not within the reply owed");
        assert_edit_accepted(7, "offset=3", "offset=4");
}
END_TEST

START_TEST(test_parse_rejects_connections_inconsistent_in_themselves) {
        /* A oneshot connection holds one message: no parser, one ack once it has it. */
        assert_edit_rejected(8, "acks=0", "acks=1",
                             "acks: a oneshot connection owes one ack, once it has its message");
        assert_edit_accepted(8, "state=reading acks=0", "state=replying acks=1");
        assert_edit_rejected(8, "state=reading acks=0", "state=replying acks=2",
                             "acks: a oneshot connection owes one ack, once it has its message");
        /* Its reply has no LF: "OK then" is 7 bytes. */
        assert_edit_accepted(8, "state=reading acks=0 offset=0", "state=replying acks=1 offset=6");
        assert_edit_rejected(8, "state=reading acks=0 offset=0", "state=replying acks=1 offset=7",
                             "offset: not within the reply owed");
        assert_edit_rejected(8, "partial=0", "partial=1",
                             "partial: a oneshot connection has no parser state");
        assert_edit_rejected(8, "eof=0", "eof=1", "eof: set while reading");
        /* Lingering, or waiting for a PROXY header: owing and holding nothing. */
        assert_edit_accepted(
                8,
                "state=reading acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=4999",
                "state=linger acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=1999");
        assert_edit_rejected(
                8,
                "state=reading acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=4999",
                "state=linger acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=2001",
                "timer-ms: beyond its timer's duration");
        assert_edit_rejected(7, "state=reading", "state=linger",
                             "acks: owed while lingering or waiting for a header");
        assert_edit_rejected(8, "state=reading", "state=header",
                             "state: header only on a +proxy listener, before anything else");
        assert_edit_accepted(
                8,
                "state=reading acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=4999 client=192.0.2.7:40522",
                "state=header acks=0 offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 "
                "written=0 timer-ms=4999");
        assert_edit_rejected(7, "state=reading acks=2 offset=3 partial=17",
                             "state=header acks=0 offset=0 partial=0",
                             "state: header only on a +proxy listener, before anything else");
        /* EOF and an error reply end the reading. */
        assert_edit_rejected(7, "eof=0", "eof=1", "eof: set while reading");
        assert_edit_rejected(7, "error=none", "error=too-long", "error: owed while reading");
        assert_edit_rejected(11, "partial=0", "partial=1", "partial: the parser is reset at EOF");
        assert_edit_rejected(10, "partial=11 cr=1 error=too-long eof=0",
                             "partial=0 cr=0 error=too-long eof=1",
                             "eof: reading stopped at the message too long");
        /* ERR busy goes to a rejected connection, which was never read. */
        assert_edit_rejected(9, "rejected=1", "rejected=0",
                             "rejected: ERR busy is owed to rejected connections only");
        assert_edit_rejected(9, "acks=0", "acks=1", "rejected: a rejected connection has read nothing");
        assert_edit_rejected(9, "partial=0", "partial=1",
                             "rejected: a rejected connection has read nothing");
        assert_edit_rejected(9, "eof=0", "eof=1", "rejected: a rejected connection has read nothing");
        assert_edit_rejected(9, "offset=8", "offset=9", "offset: not within the reply owed");
        /* A rejected connection that has had its ERR busy lingers. */
        assert_edit_accepted(9, "state=replying acks=0 offset=8 partial=0 cr=0 error=busy",
                             "state=linger acks=0 offset=0 partial=0 cr=0 error=none");
        /* With nothing owed, nothing is half written. */
        assert_edit_rejected(9, "offset=8 partial=0 cr=0 error=busy", "offset=1 partial=0 cr=0 error=none",
                             "offset: not within the reply owed");
        /* Metrics listeners are listed like the others; no connection is theirs. */
        assert_edit_rejected_at(3, "mode=oneshot", "mode=metrics", 8, "mode: not its listener's");
}
END_TEST

/* ---- Over the caps. */

START_TEST(test_parse_rejects_more_listeners_and_profiles_than_the_caps) {
        size_t size = 64 + (HANDOVER_LISTENERS_MAX + 1) * 64 + (HANDOVER_PROFILES_MAX + 1) * 80;
        char *text = malloc(size);
        size_t n = 0;

        ck_assert_ptr_nonnull(text);
        n += (size_t)snprintf(text + n, size - n, "ackd-handover 1\n");
        for (unsigned i = 0; i <= HANDOVER_LISTENERS_MAX; i++)
                n += (size_t)snprintf(text + n, size - n, "listener %u mode=line proxy=0 name=x\n", i);
        assert_text_rejected(text, n, "line 258: listener: more than 256 listeners");

        n = (size_t)snprintf(text, size, "ackd-handover 1\n");
        for (unsigned i = 0; i <= HANDOVER_PROFILES_MAX; i++)
                n += (size_t)snprintf(text + n, size - n,
                                      "profile %u max-message=1 idle-timeout-ms=1 ack=A\n", i);
        assert_text_rejected(text, n, "line 258: profile: more than 256 profiles");
        free(text);
}
END_TEST

/* 1,000,000 connections, the most there may be, parse in linear time; one more is refused. */
START_TEST(test_parse_million_connections_and_refuse_one_more) {
        static const char head[] = "ackd-handover 1\nlistener 0 mode=line proxy=0 name=x\n"
                                   "profile 0 max-message=1 idle-timeout-ms=1 ack=A\n";
        size_t size = sizeof head + (HANDOVER_CONNECTIONS_MAX + 1) * 192 + 64, n, before_last = 0;
        struct timespec t0, t1;
        char err[HANDOVER_ERROR_MAX];
        HandoverState s;
        char *text = malloc(size);
        double seconds;

        ck_assert_ptr_nonnull(text);
        n = (size_t)snprintf(text, size, "%s", head);
        for (unsigned i = 1; i <= HANDOVER_CONNECTIONS_MAX + 1; i++) {
                if (i == HANDOVER_CONNECTIONS_MAX + 1)
                        before_last = n;
                n += (size_t)snprintf(
                        text + n, size - n,
                        "connection inode=%u listener=0 profile=0 mode=line state=reading acks=%u "
                        "offset=0 partial=0 cr=0 error=none eof=0 rejected=0 logged=0 written=%u "
                        "timer-ms=1\n",
                        i, i % 7, i * 13);
        }
        n += (size_t)snprintf(text + n, size - n, "end listeners=1 profiles=1 connections=%d\n",
                              HANDOVER_CONNECTIONS_MAX + 1);
        assert_text_rejected(text, n, "line 1000004: connection: more than 1000000 connections");

        n = before_last + (size_t)snprintf(text + before_last, size - before_last,
                                           "end listeners=1 profiles=1 connections=%d\n",
                                           HANDOVER_CONNECTIONS_MAX);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        ck_assert_msg(handover_state_parse(text, n, &s, err, sizeof err) == 0, "%s", err);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        ck_assert_uint_eq(s.n_connections, HANDOVER_CONNECTIONS_MAX);
        ck_assert_uint_eq(s.connections[HANDOVER_CONNECTIONS_MAX - 1].inode, HANDOVER_CONNECTIONS_MAX);
        ck_assert_uint_eq(s.connections[999].bytes_written, 1000u * 13);
        ck_assert_ptr_eq(handover_state_find(&s, 777777), &s.connections[777776]);
        /* CPU time, which the load of other processes does not stretch. Linear: a few seconds
         * even under a sanitizer; quadratic would take hours. */
        ck_assert_msg(seconds < 60, "parsing took %.1f s", seconds);
        fprintf(stderr, "# 1000000 connections: %zu bytes parsed in %.3f s of CPU\n", n, seconds);
        handover_state_done(&s);
        free(text);
}
END_TEST

/* ---- handover_state_check(), which handover_state_format() applies. */

typedef void (*Breaker)(HandoverState *s);

static void break_listener_name(HandoverState *s) {
        memset(s->listeners[0].name, 'x', sizeof s->listeners[0].name);
}
static void empty_listener_name(HandoverState *s) {
        s->listeners[1].name[0] = '\0';
}
static void break_listener_mode(HandoverState *s) {
        s->listeners[2].mode = _PROTOCOL_MAX;
}
static void break_ack_len(HandoverState *s) {
        s->profiles[0].ack_len = ACK_TEXT_MAX + 1;
}
static void empty_ack(HandoverState *s) {
        s->profiles[0].ack_len = 0;
}
static void control_in_ack(HandoverState *s) {
        s->profiles[1].ack[2] = '\n';
}
static void break_max_message(HandoverState *s) {
        s->profiles[1].max_message = ACK_MESSAGE_MAX + 1;
}
static void break_idle_timeout(HandoverState *s) {
        s->profiles[1].idle_timeout_ms = 0;
}
static void break_inode(HandoverState *s) {
        s->connections[0].inode = 0;
}
static void break_state(HandoverState *s) {
        s->connections[0].state = _HANDOVER_STATE_MAX;
}
static void break_error(HandoverState *s) {
        s->connections[3].error_reply = _HANDOVER_ERROR_MAX;
}
static void break_mode(HandoverState *s) {
        s->connections[0].mode = 7;
}
static void break_partial(HandoverState *s) {
        s->connections[0].parser_partial = ACK_MESSAGE_MAX + 2;
}
static void break_listener_index(HandoverState *s) {
        s->connections[0].listener = 3;
}
static void break_order(HandoverState *s) {
        s->connections[1].inode = 50;
}
static void break_unique(HandoverState *s) {
        s->connections[2].inode = 200;
}
static void break_client_len(HandoverState *s) {
        s->connections[1].client_len = sizeof(struct sockaddr_storage) + 1;
}
static void break_offset(HandoverState *s) {
        s->connections[2].out_offset = 9;
}

START_TEST(test_check_and_format_refuse_what_parse_would) {
        static const struct {
                Breaker breaker;
                const char *reason;
        } cases[] = {
                { break_listener_name, "listener 0: name: too long" },
                { empty_listener_name, "listener 1: name: empty" },
                { break_listener_mode, "listener 2: mode: out of range" },
                { break_ack_len, "profile 0: ack: longer than 255 bytes" },
                { empty_ack, "profile 0: ack: expected 1 to 255 bytes" },
                { control_in_ack, "profile 1: ack: control byte" },
                { break_max_message, "profile 1: max-message: out of range" },
                { break_idle_timeout, "profile 1: idle-timeout-ms: out of range" },
                { break_inode, "connection 0 (inode 0): inode: out of range" },
                { break_state, "connection 0 (inode 100): state: out of range" },
                { break_error, "connection 3 (inode 400): error: out of range" },
                { break_mode, "connection 0 (inode 100): mode: out of range" },
                { break_partial, "connection 0 (inode 100): partial: out of range" },
                { break_listener_index, "connection 0 (inode 100): listener: no such listener" },
                { break_order, "connection 1 (inode 50): inode: not in ascending order" },
                { break_unique, "connection 2 (inode 200): inode: twice" },
                { break_client_len, "connection 1 (inode 200): client: longer than a sockaddr_storage" },
                { break_offset, "connection 2 (inode 300): offset: not within the reply owed" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                HandoverState s;
                char err[HANDOVER_ERROR_MAX] = "", *text = NULL;
                size_t len;

                base_state(&s);
                ck_assert_int_eq(handover_state_check(&s, err, sizeof err), 0);
                cases[i].breaker(&s);
                ck_assert_int_eq(handover_state_check(&s, err, sizeof err), -EINVAL);
                ck_assert_msg(strcmp(err, cases[i].reason) == 0, "'%s', expected '%s'", err,
                              cases[i].reason);
                ck_assert_int_eq(handover_state_format(&s, &text, &len), -EINVAL);
                ck_assert_ptr_null(text);
                handover_state_done(&s);
        }
}
END_TEST

/* ---- Size: what a restart with 10,000 connections costs. */

START_TEST(test_ten_thousand_connections_format_and_parse_fast) {
        HandoverState s, t;
        struct timespec t0, t1, t2;
        char err[HANDOVER_ERROR_MAX], *text;
        double format_ms, parse_ms;
        size_t len;

        base_state(&s);
        s.n_connections = 0;
        for (unsigned i = 0; i < 10000; i++) {
                HandoverConnection *c = add_connection(&s, 1000000 + (uint64_t)i * 3, i % 3, i % 2);

                c->pending_acks = c->mode == PROTOCOL_LINE ? i % 5 : 0;
                c->bytes_written = c->mode == PROTOCOL_LINE ? i * 977 : 0;
                c->timer_remaining_ms = i % 5000;
                if (s.listeners[c->listener].proxy)
                        set_client(c, i % 2 ? "[2001:db8::42]:50000" : "198.51.100.23:61000");
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        ck_assert_int_eq(handover_state_format(&s, &text, &len), 0);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        ck_assert_msg(handover_state_parse(text, len, &t, err, sizeof err) == 0, "%s", err);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t2);
        assert_states_equal(&s, &t);
        format_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        parse_ms = (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6;
        fprintf(stderr, "# 10000 connections: %zu bytes, format %.2f ms, parse %.2f ms of CPU\n", len,
                format_ms, parse_ms);
        /* The budget is 100 ms for both; a sanitizer build gets ten times that. CPU time, which
         * the load of other processes does not stretch. */
        ck_assert_msg(format_ms + parse_ms < 1000, "format %.1f ms, parse %.1f ms", format_ms, parse_ms);
        free(text);
        handover_state_done(&t);
        handover_state_done(&s);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("handover-state");
        TCase *tc;

        tc = tcase_create("round-trip");
        tcase_add_test(tc, test_format_writes_the_documented_text);
        tcase_add_test(tc, test_empty_state_round_trips);
        tcase_add_test(tc, test_round_trip_every_field_at_its_bounds);
        tcase_add_test(tc, test_round_trip_full_tables);
        tcase_add_test(tc, test_round_trip_every_kind_of_listener);
        tcase_add_test(tc, test_escaping_of_hostile_names_and_acks);
        tcase_add_test(tc, test_round_trip_every_connection_shape);
        tcase_add_test(tc, test_round_trip_client_addresses);
        tcase_add_test(tc, test_sort_and_find);
        suite_add_tcase(s, tc);

        tc = tcase_create("input");
        tcase_add_test(tc, test_parse_rejects_bad_magic);
        tcase_add_test(tc, test_parse_rejects_unknown_version);
        tcase_add_test(tc, test_parse_rejects_truncation_everywhere);
        tcase_add_test(tc, test_parse_rejects_trailing_garbage);
        tcase_add_test(tc, test_parse_rejects_nul_bytes);
        tcase_add_test(tc, test_parse_rejects_raw_bytes_that_need_escaping);
        tcase_add_test(tc, test_parse_rejects_overlong_lines);
        tcase_add_test(tc, test_parse_rejects_empty_lines_and_fields);
        suite_add_tcase(s, tc);

        tc = tcase_create("lines");
        tcase_add_test(tc, test_parse_rejects_unknown_lines);
        tcase_add_test(tc, test_parse_rejects_lines_out_of_order);
        tcase_add_test(tc, test_parse_rejects_bad_indexes);
        tcase_add_test(tc, test_parse_rejects_unknown_keys);
        tcase_add_test(tc, test_parse_rejects_missing_keys);
        tcase_add_test(tc, test_parse_rejects_duplicated_keys);
        suite_add_tcase(s, tc);

        tc = tcase_create("values");
        tcase_add_test(tc, test_parse_rejects_every_numeric_field_out_of_range);
        tcase_add_test(tc, test_parse_rejects_numbers_in_other_spellings);
        tcase_add_test(tc, test_parse_rejects_unknown_names);
        tcase_add_test(tc, test_parse_rejects_bad_escapes);
        tcase_add_test(tc, test_parse_rejects_bad_names_and_acks);
        tcase_add_test(tc, test_parse_rejects_bad_client_addresses);
        suite_add_tcase(s, tc);

        tc = tcase_create("consistency");
        tcase_add_test(tc, test_parse_rejects_dangling_indexes);
        tcase_add_test(tc, test_parse_rejects_duplicate_and_unordered_inodes);
        tcase_add_test(tc, test_parse_rejects_counts_that_disagree_with_the_end_line);
        tcase_add_test(tc, test_parse_rejects_connections_inconsistent_with_listener_or_profile);
        tcase_add_test(tc, test_parse_rejects_connections_inconsistent_in_themselves);
        tcase_add_test(tc, test_check_and_format_refuse_what_parse_would);
        suite_add_tcase(s, tc);

        tc = tcase_create("size");
        tcase_add_test(tc, test_parse_rejects_more_listeners_and_profiles_than_the_caps);
        tcase_add_test(tc, test_parse_million_connections_and_refuse_one_more);
        tcase_add_test(tc, test_ten_thousand_connections_format_and_parse_fast);
        /* A million records take a few seconds, more under a sanitizer. */
        tcase_set_timeout(tc, 300);
        suite_add_tcase(s, tc);

        return s;
}
