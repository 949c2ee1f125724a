/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every option ackd has, defined once in ACKD_OPTIONS: the table drives
 * getopt_long and --help (through the option machinery shared with ackc,
 * options.h), the config file parser and the defaults (which are
 * parsed from their string form by the same code as user input, so the help
 * text can never disagree with the behaviour). ackd(8) and ackd.conf(5) list
 * the same options; a test checks that they do.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "address.h"
#include "config.h"
#include "options.h"
#include "protocol.h"

#define SETTINGS_LISTEN_MAX     64
#define SETTINGS_PROXY_FROM_MAX 64
#define SETTINGS_THREADS_MAX    256
#define SETTINGS_ERROR_MAX      512
#define USER_NAME_MAX           255

#define DEFAULT_CONFIG_PATH SYSCONFDIR "/ackd/ackd.conf"

/* X(ID, long name, short name or 0, argument name or NULL, default or NULL, allowed in the config file,
 * help) */
#define ACKD_OPTIONS(X)                                                                                   \
        X(LISTEN, "listen", 'l', "[MODE@]ADDRESS", ":9999", true,                                         \
          "Listen on ADDRESS, repeatable. MODE is oneshot, line or metrics, and oneshot+proxy or "        \
          "line+proxy "                                                                                   \
          "when a PROXY protocol header comes first; ADDRESS is HOST:PORT, [IPV6]:PORT, "                 \
          ":PORT (all addresses, dual-stack) or unix:PATH")                                               \
        X(THREADS, "threads", 't', "N", "auto", true,                                                     \
          "Worker threads, each with its own epoll loop; auto is one per CPU")                            \
        X(MAX_CONNECTIONS, "max-connections", 0, "N", "10000", true,                                      \
          "Connections served at once; more are answered \"ERR busy\" (capped by the file descriptor "    \
          "limit)")                                                                                       \
        X(MAX_MESSAGE, "max-message", 0, "BYTES", "1024", true,                                           \
          "Longest message, in bytes or with a K, M or G (binary) suffix")                                \
        X(IDLE_TIMEOUT, "idle-timeout", 0, "SECS", "30", true,                                            \
          "Close a connection that neither completes a message nor takes an acknowledgement for this "    \
          "long; seconds, or a number with ms, s, min or h")                                              \
        X(DRAIN_TIMEOUT, "drain-timeout", 0, "SECS", "5", true,                                           \
          "On stop, time allowed to deliver pending acknowledgements")                                    \
        X(ACK, "ack", 0, "TEXT", ACK_DEFAULT_TEXT, true, "Reply text (line mode adds a newline)")         \
        X(PROXY_FROM, "proxy-from", 0, "CIDR", NULL, true,                                                \
          "Sources allowed to connect to +proxy listeners, repeatable (default: any)")                    \
        X(PROXY_TIMEOUT, "proxy-timeout", 0, "SECS", "3", true,                                           \
          "Time a +proxy connection has to send its whole PROXY header")                                  \
        X(SHUTDOWN_DELAY, "shutdown-delay", 0, "SECS", "0", true,                                         \
          "On stop, keep serving this long while /healthz already answers 503, then drain")               \
        X(LOG_LEVEL, "log-level", 0, "LEVEL", "notice", true,                                             \
          "error, warning, notice, info (each connection and message) or debug")                          \
        X(USER, "user", 0, "NAME", NULL, true,                                                            \
          "Started as root: drop to this user and all capabilities once the sockets are open")            \
        X(ALLOW_ROOT, "allow-root", 0, NULL, NULL, false,                                                 \
          "Serve as root (without --user); refused otherwise")                                            \
        X(CONFIG, "config", 'c', "FILE", DEFAULT_CONFIG_PATH, false, "Configuration file")                \
        X(VERBOSE, "verbose", 'v', NULL, NULL, false, "Log each connection and message; twice for debug") \
        X(VERSION, "version", 'V', NULL, NULL, false, "Print the version and exit")                       \
        X(HELP, "help", 'h', NULL, NULL, false, "Print this help and exit")

typedef enum OptionId {
#define OPTION_ENUM(id, ...) OPTION_##id,
        ACKD_OPTIONS(OPTION_ENUM)
#undef OPTION_ENUM
                _OPTION_MAX,
} OptionId;

/* OptionInfo.flags: the configuration file may set it (otherwise: command line only). */
#define OPTION_IN_CONFIG 1u

extern const OptionInfo option_table[_OPTION_MAX];

typedef struct Settings {
        ListenAddress listen[SETTINGS_LISTEN_MAX];
        size_t n_listen;
        unsigned threads; /* 0: one per CPU */
        uint64_t max_connections;
        uint64_t max_message;
        uint64_t idle_timeout_ms;
        uint64_t drain_timeout_ms;
        AddressPrefix proxy_from[SETTINGS_PROXY_FROM_MAX];
        size_t n_proxy_from; /* 0: any source */
        uint64_t proxy_timeout_ms;
        uint64_t shutdown_delay_ms;
        char ack[ACK_TEXT_MAX + 1];
        size_t ack_len;
        int log_level;
        char user[USER_NAME_MAX + 1]; /* empty: stay who we are */
} Settings;

/* One "--name value" from the command line, kept so a reload can apply it again. */
typedef struct OptionValue {
        OptionId id;
        const char *value;
} OptionValue;

typedef struct CommandLine {
        OptionValue *values;
        size_t n_values;
        const char *config_path;
        bool config_explicit; /* --config given: the file must exist */
        unsigned verbose;
        bool allow_root;
        bool help;
        bool version;
} CommandLine;

/* Parses argv. On a usage error returns -EINVAL with a message in err. */
int command_line_parse(int argc, char *argv[], CommandLine *ret, char *err, size_t err_size);
void command_line_done(CommandLine *c);

/* Defaults only. */
void settings_init(Settings *s);

/* Applies one option's value. Returns -EINVAL/-ERANGE with a message (naming the
 * expected form, not the option) in err. */
int settings_apply(Settings *s, OptionId id, const char *value, char *err, size_t err_size);

/* Reads "key = value" lines into s. Returns -EINVAL with "FILE:LINE: key: reason" in err. */
int settings_parse_config(Settings *s, FILE *f, const char *filename, char *err, size_t err_size);

/* Defaults, then the config file, then the command line (which replaces the file's
 * listen list if it names any listener). Returns -EINVAL for a usage or config error,
 * another negative errno when the file cannot be read; err says which. */
int settings_load(const CommandLine *c, Settings *ret, char *err, size_t err_size);

void settings_help(FILE *f, const char *program);
