/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ackc's options, defined once in ACKC_OPTIONS: the table drives getopt_long
 * and --help for both commands (the `commands` column says which take an
 * option), and ackc(1) lists the same options (a test checks that it does).
 * Parsing is pure (no I/O), so it is unit-tested.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "address.h"
#include "options.h"
#include "protocol.h"

typedef enum Command {
        COMMAND_SEND = 1 << 0,
        COMMAND_BENCH = 1 << 1,
} Command;

#define CMD_BOTH (COMMAND_SEND | COMMAND_BENCH)

/* Exit status of both commands; ackc(1) documents them. */
#define EXIT_REPLY   1 /* a reply was missing, wrong or an ERR; bench: a request failed */
#define EXIT_USAGE   2
#define EXIT_CONNECT 3 /* could not connect; bench: nothing could */

#define ARGS_ERROR_MAX       512
#define ARGS_SOURCES_MAX     64
#define ARGS_EXPECT_MAX      4096
#define ARGS_THREADS_MAX     256
#define ARGS_CONNECTIONS_MAX 1000000
#define ARGS_DEPTH_MAX       4096
#define ARGS_SEND_BUFFER_MAX (64u * 1024 * 1024) /* --depth copies of the message */
#define ARGS_INFLIGHT_MAX    (16u * 1024 * 1024) /* connections x depth: 16 bytes of ring each */
#define ARGS_DEFAULT_SIZE    "16"

#define ARGS_STRINGIFY_(x) #x
#define ARGS_STRINGIFY(x)  ARGS_STRINGIFY_(x)

/* X(ID, long name, short name or 0, argument or NULL, default or NULL, commands, help) */
#define ACKC_OPTIONS(X)                                                                                     \
        X(HOST, "host", 'H', "HOST", "localhost", CMD_BOTH,                                                 \
          "Server host name or address, IPv4 or IPv6 (every address it resolves to is tried)")              \
        X(PORT, "port", 'p', "PORT", ARGS_STRINGIFY(ACK_DEFAULT_PORT), CMD_BOTH, "Server TCP port")         \
        X(UNIX, "unix", 'u', "PATH", NULL, CMD_BOTH,                                                        \
          "Connect to the AF_UNIX stream socket PATH instead (@NAME: abstract namespace)")                  \
        X(MODE, "mode", 'm', "MODE", "oneshot", COMMAND_SEND,                                               \
          "oneshot: a connection per message; line: one connection, messages pipelined, acks matched in "   \
          "order")                                                                                          \
        X(BENCH_MODE, "mode", 'm', "MODE", "oneshot", COMMAND_BENCH,                                        \
          "oneshot: a new connection per request; line: persistent connections, --depth messages in "       \
          "flight "                                                                                         \
          "on each")                                                                                        \
        X(TIMEOUT, "timeout", 0, "SECS", "5", CMD_BOTH,                                                     \
          "Give up on a connect, or on a reply, after this long (ms, s, min suffixes allowed)")             \
        X(EXPECT, "expect", 0, "TEXT", NULL, CMD_BOTH,                                                      \
          "Exact reply expected per message, C escapes such as \\r\\n allowed (default: \"ACK!\" in "       \
          "oneshot "                                                                                        \
          "mode, \"ACK!\\n\" in line mode)")                                                                \
        X(ACK, "ack", 0, "TEXT", NULL, CMD_BOTH,                                                            \
          "Expect the server's --ack TEXT: the same as --expect TEXT, plus a newline in line mode")         \
        X(MESSAGE, "message", 0, "TEXT", NULL, COMMAND_SEND,                                                \
          "Send TEXT (C escapes allowed), repeatable; sent before the MESSAGE arguments")                   \
        X(QUIET, "quiet", 'q', NULL, NULL, COMMAND_SEND,                                                    \
          "Print no replies; errors still go to standard error")                                            \
        X(PROXY, "proxy", 0, "VERSION", NULL, CMD_BOTH,                                                     \
          "Start every connection with a PROXY protocol header: v1, v2, or local (a v2 LOCAL, as a "        \
          "proxy's health check sends)")                                                                    \
        X(PROXY_SOURCE, "proxy-source", 0, "ADDR:PORT", NULL, CMD_BOTH,                                     \
          "The client address the PROXY header claims, 192.0.2.7:5555 or [2001:db8::7]:5555 (default: the " \
          "connection's own)")                                                                              \
        X(CONNECTIONS, "connections", 'c', "N", "50", COMMAND_BENCH,                                        \
          "Connections open at once (oneshot: requests in flight)")                                         \
        X(DURATION, "duration", 'd', "SECS", "10", COMMAND_BENCH,                                           \
          "Run for this long (with --idle: hold the connections this long)")                                \
        X(REQUESTS, "requests", 'n', "N", NULL, COMMAND_BENCH,                                              \
          "Send N messages (oneshot: open N connections), then stop, instead of --duration")                \
        X(DEPTH, "depth", 0, "N", "1", COMMAND_BENCH, "Line mode: messages in flight on each connection")   \
        X(THREADS, "threads", 't', "N", "1", COMMAND_BENCH,                                                 \
          "Threads, each with its own epoll loop and its share of the connections")                         \
        X(SIZE, "size", 0, "BYTES", ARGS_DEFAULT_SIZE, COMMAND_BENCH,                                       \
          "Message size, newline not included (K and M suffixes allowed)")                                  \
        X(BENCH_MESSAGE, "message", 0, "TEXT", NULL, COMMAND_BENCH,                                         \
          "Send TEXT (C escapes allowed) instead of --size generated bytes")                                \
        X(RATE, "rate", 0, "N", NULL, COMMAND_BENCH,                                                        \
          "Open loop: start N requests per second on a fixed schedule, and measure latency from each "      \
          "request's scheduled time")                                                                       \
        X(IDLE, "idle", 0, "N", NULL, COMMAND_BENCH,                                                        \
          "Open N connections, hold them idle for --duration, then send one message on each and check "     \
          "that "                                                                                           \
          "every one is answered")                                                                          \
        X(SOURCE, "source", 0, "ADDR", NULL, COMMAND_BENCH,                                                 \
          "Local address to connect from, repeatable: connections are spread over them in turn")            \
        X(JSON, "json", 0, NULL, NULL, COMMAND_BENCH, "Print the report as one JSON object")                \
        X(VERSION, "version", 'V', NULL, NULL, CMD_BOTH, "Print the version and exit")                      \
        X(HELP, "help", 'h', NULL, NULL, CMD_BOTH, "Print this help and exit")

typedef enum ArgId {
#define ARG_ENUM(id, ...) ARG_##id,
        ACKC_OPTIONS(ARG_ENUM)
#undef ARG_ENUM
                _ARG_MAX,
} ArgId;

extern const OptionInfo ackc_options[_ARG_MAX];

typedef struct Message {
        const char *data;
        size_t len;
} Message;

typedef struct Source {
        struct sockaddr_storage addr;
        socklen_t len;
} Source;

/* --proxy: what goes before each connection's data. */
typedef enum ProxyMode {
        PROXY_NONE,
        PROXY_V1,
        PROXY_V2,
        PROXY_LOCAL, /* a v2 LOCAL: no addresses */
} ProxyMode;

typedef struct ClientArgs {
        Command command;
        bool help;
        bool version;

        /* Target, both commands. */
        char host[ADDRESS_HOST_MAX + 1];
        uint16_t port;
        const char *unix_path;
        ProtocolMode mode;
        uint64_t timeout_ms;
        char *expect; /* the exact reply to each message */
        size_t expect_len;
        ProxyMode proxy;
        Source proxy_source; /* --proxy-source; len 0: the connection's own address */

        /* send */
        bool quiet;
        Message *messages; /* --message values, then the arguments; none: stdin */
        size_t n_messages;

        /* bench */
        uint64_t connections;
        uint64_t duration_ms;
        uint64_t requests; /* 0: run for duration_ms */
        uint64_t depth;
        uint64_t threads;
        uint64_t rate; /* per second; 0: closed loop */
        uint64_t idle; /* 0: not an idle test */
        char *payload; /* the message, newline not included */
        size_t payload_len;
        Source sources[ARGS_SOURCES_MAX];
        size_t n_sources;
        bool json;

        /* Decoded --message values, owned. */
        char **owned;
        size_t n_owned;
} ClientArgs;

/*
 * Parses the arguments after the command name (argv[0] is the program or
 * "bench"). Returns 0, -EINVAL with a one-line message naming the option in err,
 * or -ENOMEM. args_done() must be called either way.
 */
int args_parse(Command command, int argc, char *argv[], ClientArgs *ret, char *err, size_t err_size);
void args_done(ClientArgs *a);

void args_help(FILE *f, Command command);
