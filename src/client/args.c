/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "address.h"
#include "args.h"
#include "macro.h"
#include "parse-util.h"
#include "unescape.h"

const OptionInfo ackc_options[_ARG_MAX] = {
#define ARG_INFO(id, n, s, a, d, c, h)                                                               \
        [ARG_##id] = {                                                                               \
                .name = n, .short_name = s, .argument = a, .default_value = d, .flags = c, .help = h \
        },
        ACKC_OPTIONS(ARG_INFO)
#undef ARG_INFO
};

/* Parser state beyond ClientArgs: what was given, and values resolved once the mode is known. */
typedef struct ParseState {
        bool given[_ARG_MAX];
        const char *ack;
        uint64_t size;
} ParseState;

static int bad_value(char *err, size_t err_size, ArgId id, const char *value, int r, const char *expected) {
        return option_value_error(err, err_size, &ackc_options[id], value, r, expected);
}

static int parse_number(ArgId id, const char *value, uint64_t min, uint64_t max, uint64_t *ret, char *err,
                        size_t err_size) {
        char expected[64];
        int r;

        r = parse_uint64(value, min, max, ret);
        if (r < 0) {
                (void)snprintf(expected, sizeof expected, "%llu..%llu", (unsigned long long)min,
                               (unsigned long long)max);
                return bad_value(err, err_size, id, value, r, expected);
        }
        return 0;
}

/* Decodes C escapes into a buffer the arguments own. */
static int decode(ClientArgs *a, ArgId id, const char *value, char **ret, size_t *ret_len, char *err,
                  size_t err_size) {
        const char *reason = NULL;
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = unescape(value, &buf, &len, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return option_error(err, err_size, "--%s: invalid value '%s': %s", ackc_options[id].name,
                                    value, reason);
        a->owned[a->n_owned++] = buf;
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int parse_source(ClientArgs *a, const char *value, char *err, size_t err_size) {
        Source *s = &a->sources[a->n_sources];
        char buf[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(value);

        if (a->n_sources >= ARGS_SOURCES_MAX)
                return option_error(err, err_size, "--source: at most %d addresses", ARGS_SOURCES_MAX);
        if (n >= sizeof buf)
                return bad_value(err, err_size, ARG_SOURCE, value, -EINVAL, "an IPv4 or IPv6 address");
        memcpy(buf, value, n + 1);
        if (n > 2 && buf[0] == '[' && buf[n - 1] == ']') {
                memmove(buf, buf + 1, n - 2);
                buf[n - 2] = '\0';
        }

        *s = (Source){ 0 };
        if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)&s->addr)->sin_addr) == 1) {
                s->addr.ss_family = AF_INET;
                s->len = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)&s->addr)->sin6_addr) == 1) {
                s->addr.ss_family = AF_INET6;
                s->len = sizeof(struct sockaddr_in6);
        } else
                return bad_value(err, err_size, ARG_SOURCE, value, -EINVAL, "an IPv4 or IPv6 address");
        a->n_sources++;
        return 0;
}

static int parse_proxy(ClientArgs *a, const char *value, char *err, size_t err_size) {
        static const char *const names[] = { [PROXY_V1] = "v1", [PROXY_V2] = "v2", [PROXY_LOCAL] = "local" };

        for (size_t i = PROXY_V1; i < ELEMENTSOF(names); i++)
                if (strcmp(value, names[i]) == 0) {
                        a->proxy = (ProxyMode)i;
                        return 0;
                }
        return bad_value(err, err_size, ARG_PROXY, value, -EINVAL, "v1, v2 or local");
}

static int parse_proxy_source(ClientArgs *a, const char *value, char *err, size_t err_size) {
        Source *s = &a->proxy_source;

        /* The spelling sockaddr_format() prints, which is also how ackd logs it. */
        if (sockaddr_parse(value, &s->addr, &s->len) < 0 ||
            (s->addr.ss_family != AF_INET && s->addr.ss_family != AF_INET6)) {
                *s = (Source){ 0 };
                return bad_value(err, err_size, ARG_PROXY_SOURCE, value, -EINVAL,
                                 "IPV4:PORT or [IPV6]:PORT, such as 192.0.2.7:5555 or [2001:db8::7]:5555");
        }
        return 0;
}

static int parse_host(ClientArgs *a, const char *value, char *err, size_t err_size) {
        size_t n = strlen(value);

        /* "[::1]" as well as "::1", as people write IPv6 literals next to ports. */
        if (n >= 2 && value[0] == '[' && value[n - 1] == ']') {
                value++;
                n -= 2;
        }
        if (n == 0 || n > ADDRESS_HOST_MAX)
                return bad_value(err, err_size, ARG_HOST, value, -EINVAL, "a host name or an IP address");
        memcpy(a->host, value, n);
        a->host[n] = '\0';
        return 0;
}

/* One case per option of ARGS_OPTIONS: as long as the table, each case short. */
static int apply(ParseState *st, ClientArgs *a, ArgId id, const char *value, char *err, size_t err_size) {
        uint64_t v;
        char *buf = NULL;
        size_t len = 0;
        int r;

        switch (id) {
        case ARG_HOST:
                return parse_host(a, value, err, err_size);
        case ARG_PORT:
                r = parse_number(id, value, 1, 65535, &v, err, err_size);
                if (r >= 0)
                        a->port = (uint16_t)v;
                return r;
        case ARG_UNIX: {
                struct sockaddr_un sun;
                socklen_t sl;

                if (sockaddr_un_set(&sun, value, &sl) < 0)
                        return bad_value(err, err_size, id, value, -EINVAL,
                                         "a socket path of 1 to 107 bytes");
                a->unix_path = value;
                return 0;
        }
        case ARG_MODE:
        case ARG_BENCH_MODE:
                a->mode = protocol_mode_from_string(value);
                if (a->mode < 0)
                        return bad_value(err, err_size, id, value, -EINVAL, "oneshot or line");
                return 0;
        case ARG_TIMEOUT:
                r = parse_duration_ms(value, 1, 3600 * 1000, &a->timeout_ms);
                return r < 0 ? bad_value(err, err_size, id, value, r, "a duration from 1ms to 1h") : 0;
        case ARG_EXPECT:
                r = decode(a, id, value, &buf, &len, err, err_size);
                if (r < 0)
                        return r;
                if (len == 0 || len > ARGS_EXPECT_MAX)
                        return bad_value(err, err_size, id, value, -ERANGE, "1 to 4096 bytes");
                a->expect = buf;
                a->expect_len = len;
                return 0;
        case ARG_ACK:
                len = strlen(value);
                if (len == 0 || len > ACK_TEXT_MAX)
                        return bad_value(err, err_size, id, value, -ERANGE, "1 to 255 bytes");
                st->ack = value;
                return 0;
        case ARG_MESSAGE:
                r = decode(a, id, value, &buf, &len, err, err_size);
                if (r < 0)
                        return r;
                a->messages[a->n_messages++] = (Message){ .data = buf, .len = len };
                return 0;
        case ARG_QUIET:
                a->quiet = true;
                return 0;
        case ARG_PROXY:
                return parse_proxy(a, value, err, err_size);
        case ARG_PROXY_SOURCE:
                return parse_proxy_source(a, value, err, err_size);
        case ARG_CONNECTIONS:
                return parse_number(id, value, 1, ARGS_CONNECTIONS_MAX, &a->connections, err, err_size);
        case ARG_DURATION:
                r = parse_duration_ms(value, 1, 24 * 3600 * 1000, &a->duration_ms);
                return r < 0 ? bad_value(err, err_size, id, value, r, "a duration from 1ms to 24h") : 0;
        case ARG_REQUESTS:
                return parse_number(id, value, 1, UINT64_C(1000000000000), &a->requests, err, err_size);
        case ARG_DEPTH:
                return parse_number(id, value, 1, ARGS_DEPTH_MAX, &a->depth, err, err_size);
        case ARG_THREADS:
                return parse_number(id, value, 1, ARGS_THREADS_MAX, &a->threads, err, err_size);
        case ARG_SIZE:
                r = parse_size(value, 0, ACK_MESSAGE_MAX, &st->size);
                return r < 0 ? bad_value(err, err_size, id, value, r, "0..16M bytes") : 0;
        case ARG_BENCH_MESSAGE:
                r = decode(a, id, value, &buf, &len, err, err_size);
                if (r < 0)
                        return r;
                if (len > ACK_MESSAGE_MAX)
                        return bad_value(err, err_size, id, value, -ERANGE, "at most 16M bytes");
                a->payload = buf;
                a->payload_len = len;
                return 0;
        case ARG_RATE:
                return parse_number(id, value, 1, 1000000000, &a->rate, err, err_size);
        case ARG_IDLE:
                return parse_number(id, value, 1, ARGS_CONNECTIONS_MAX, &a->idle, err, err_size);
        case ARG_SOURCE:
                return parse_source(a, value, err, err_size);
        case ARG_JSON:
                a->json = true;
                return 0;
        case ARG_VERSION:
                a->version = true;
                return 0;
        case ARG_HELP:
                a->help = true;
                return 0;
        case _ARG_MAX:
                break;
        }
        abort();
}

static int exclusive(const ParseState *st, ArgId x, ArgId y, char *err, size_t err_size) {
        if (st->given[x] && st->given[y])
                return option_error(err, err_size, "--%s cannot be combined with --%s", ackc_options[x].name,
                                    ackc_options[y].name);
        return 0;
}

static int finish_proxy(const ParseState *st, const ClientArgs *a, char *err, size_t err_size) {
        if (!st->given[ARG_PROXY_SOURCE])
                return 0;
        if (a->proxy == PROXY_NONE)
                return option_error(err, err_size, "--proxy-source needs --proxy v1 or v2");
        if (a->proxy == PROXY_LOCAL)
                return option_error(err, err_size,
                                    "--proxy-source cannot be combined with --proxy local (a LOCAL "
                                    "header claims no address)");
        if (a->unix_path)
                return option_error(err, err_size,
                                    "--proxy-source cannot be combined with --unix (a PROXY header "
                                    "cannot pair an IP address with a unix socket)");
        return 0;
}

static int finish_expect(ParseState *st, ClientArgs *a) {
        const char *text = st->ack ? st->ack : ACK_DEFAULT_TEXT;
        size_t n = strlen(text);
        char *buf;

        if (a->expect)
                return 0;
        /* The server adds a newline to each reply in line mode, not in oneshot mode. */
        buf = malloc(n + 2);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, text, n);
        if (a->mode == PROTOCOL_LINE)
                buf[n++] = '\n';
        buf[n] = '\0';
        a->owned[a->n_owned++] = buf;
        a->expect = buf;
        a->expect_len = n;
        return 0;
}

static int check_line_message(const ClientArgs *a, const char *data, size_t len, const char *what, char *err,
                              size_t err_size) {
        if (a->mode == PROTOCOL_LINE && memchr(data, '\n', len))
                return option_error(err, err_size,
                                    "%s contains a newline: in line mode each message is one line", what);
        return 0;
}

static int finish_send(ClientArgs *a, int argc, char *argv[], int first, char *err, size_t err_size) {
        int r;

        for (int i = first; i < argc; i++)
                a->messages[a->n_messages++] = (Message){ .data = argv[i], .len = strlen(argv[i]) };
        for (size_t i = 0; i < a->n_messages; i++) {
                r = check_line_message(a, a->messages[i].data, a->messages[i].len, "a message", err,
                                       err_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int finish_payload(ParseState *st, ClientArgs *a, char *err, size_t err_size) {
        char *buf;

        if (a->payload)
                return check_line_message(a, a->payload, a->payload_len, "--message", err, err_size);

        /* Printable, no newline, different from one byte to the next: a server that
         * mangled or reordered bytes would not go unnoticed by a capture. */
        buf = malloc(st->size + 1);
        if (!buf)
                return -ENOMEM;
        for (uint64_t i = 0; i < st->size; i++)
                buf[i] = (char)('a' + i % 26);
        buf[st->size] = '\0';
        a->owned[a->n_owned++] = buf;
        a->payload = buf;
        a->payload_len = st->size;
        return 0;
}

static int finish_bench(ParseState *st, ClientArgs *a, int argc, char *argv[], int first, char *err,
                        size_t err_size) {
        static const ArgId not_with_idle[] = { ARG_REQUESTS, ARG_RATE, ARG_DEPTH, ARG_CONNECTIONS };
        uint64_t unit;
        int r;

        if (first < argc)
                return option_error(err, err_size,
                                    "unexpected argument '%s' (bench takes no messages; see --message)",
                                    argv[first]);

        r = exclusive(st, ARG_DURATION, ARG_REQUESTS, err, err_size);
        if (r >= 0)
                r = exclusive(st, ARG_SIZE, ARG_BENCH_MESSAGE, err, err_size);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(not_with_idle); i++)
                r = exclusive(st, ARG_IDLE, not_with_idle[i], err, err_size);
        if (r < 0)
                return r;
        if (a->n_sources > 0 && a->unix_path)
                return option_error(err, err_size, "--source cannot be combined with --unix");
        if (a->mode != PROTOCOL_LINE && a->depth > 1)
                return option_error(err, err_size, "--depth applies to line mode only (add -m line)");
        if (st->given[ARG_REQUESTS])
                a->duration_ms = 0;

        r = finish_payload(st, a, err, err_size);
        if (r < 0)
                return r;
        if (a->mode == PROTOCOL_ONESHOT && a->payload_len == 0)
                return option_error(err, err_size,
                                    "an empty message cannot be sent in oneshot mode (see --size)");

        unit = a->payload_len + (a->mode == PROTOCOL_LINE);
        if (unit * a->depth > ARGS_SEND_BUFFER_MAX)
                return option_error(err, err_size,
                                    "--depth %llu of %llu-byte messages: more than 64M in flight per "
                                    "connection",
                                    (unsigned long long)a->depth, (unsigned long long)unit);

        if (a->connections * a->depth > ARGS_INFLIGHT_MAX)
                return option_error(
                        err, err_size, "--connections %llu x --depth %llu: more than %u messages in flight",
                        (unsigned long long)a->connections, (unsigned long long)a->depth, ARGS_INFLIGHT_MAX);
        if (a->idle == 0 && a->threads > a->connections)
                return option_error(err, err_size, "--threads %llu: more threads than connections (%llu)",
                                    (unsigned long long)a->threads, (unsigned long long)a->connections);
        if (a->idle > 0 && a->threads > a->idle)
                return option_error(err, err_size, "--threads %llu: more threads than connections (%llu)",
                                    (unsigned long long)a->threads, (unsigned long long)a->idle);
        return 0;
}

int args_parse(Command command, int argc, char *argv[], ClientArgs *ret, char *err, size_t err_size) {
        ParseState st = { 0 };
        ClientArgs *a = ret;
        OptionParser p;
        const char *value;
        size_t id;
        int r;

        *a = (ClientArgs){ .command = command };
        /* Each argument adds at most one message and one decoded buffer; defaults add two. */
        a->messages = calloc((size_t)argc + 1, sizeof *a->messages);
        a->owned = calloc((size_t)argc + 4, sizeof *a->owned);
        if (!a->messages || !a->owned)
                return -ENOMEM;

        /* Defaults go through the same code as user input, so --help cannot lie about them. */
        for (size_t i = 0; i < _ARG_MAX; i++) {
                const OptionInfo *o = &ackc_options[i];

                if (!o->default_value || !option_matches(o, command))
                        continue;
                if (apply(&st, a, (ArgId)i, o->default_value, err, err_size) < 0)
                        abort();
        }

        r = option_parser_init(&p, ackc_options, _ARG_MAX, command, argc, argv);
        if (r < 0)
                return r;
        while ((r = option_parser_next(&p, &id, &value, err, err_size)) > 0) {
                st.given[id] = true;
                r = apply(&st, a, (ArgId)id, value, err, err_size);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (a->help || a->version)
                return 0;

        if (a->unix_path && (st.given[ARG_HOST] || st.given[ARG_PORT]))
                return option_error(err, err_size, "--unix cannot be combined with --host or --port");
        r = exclusive(&st, ARG_EXPECT, ARG_ACK, err, err_size);
        if (r >= 0)
                r = finish_proxy(&st, a, err, err_size);
        if (r < 0)
                return r;
        r = finish_expect(&st, a);
        if (r < 0)
                return r;

        if (command == COMMAND_SEND)
                return finish_send(a, argc, argv, option_parser_operands(&p), err, err_size);
        return finish_bench(&st, a, argc, argv, option_parser_operands(&p), err, err_size);
}

void args_done(ClientArgs *a) {
        for (size_t i = 0; i < a->n_owned; i++)
                free(a->owned[i]);
        free(a->owned);
        free(a->messages);
        *a = (ClientArgs){ 0 };
}

void args_help(FILE *f, Command command) {
        if (command == COMMAND_SEND)
                fprintf(f, "Usage: ackc [OPTIONS] [MESSAGE...]\n"
                           "       ackc bench [OPTIONS]\n"
                           "\n"
                           "Sends each MESSAGE, or with none each line of standard input, to an ackd\n"
                           "server, checks that each is acknowledged and prints the replies.\n"
                           "'ackc bench --help' describes the load generator.\n"
                           "\n");
        else
                fprintf(f, "Usage: ackc bench [OPTIONS]\n"
                           "\n"
                           "Load-tests a server: closed loop by default, open loop with --rate, many idle\n"
                           "connections with --idle. Every reply byte is checked; only verified replies\n"
                           "count towards throughput and latency.\n"
                           "\n");

        option_help(f, ackc_options, _ARG_MAX, command);

        if (command == COMMAND_SEND)
                fprintf(f, "\n"
                           "Exit status: 0 every message acknowledged, 1 a reply was missing, wrong or\n"
                           "an ERR, 2 usage error, 3 could not connect. See ackc(1).\n");
        else
                fprintf(f, "\n"
                           "Exit status: 0 no errors, 1 some requests failed, 2 usage error, 3 nothing\n"
                           "could connect. See ackc(1).\n");
}
