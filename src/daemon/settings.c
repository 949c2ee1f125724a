/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "settings.h"

#define CONFIG_LINE_MAX 4096
#define UTF8_BOM        "\xef\xbb\xbf"

const OptionInfo option_table[_OPTION_MAX] = {
#define OPTION_INFO(id, n, s, a, d, c, h)                      \
        [OPTION_##id] = { .name = n,                           \
                          .short_name = s,                     \
                          .argument = a,                       \
                          .default_value = d,                  \
                          .flags = (c) ? OPTION_IN_CONFIG : 0, \
                          .help = h },
        ACKD_OPTIONS(OPTION_INFO)
#undef OPTION_INFO
};

static int range_error(int r, char *err, size_t err_size, const char *what) {
        return option_error(err, err_size, "%s %s",
                            r == -ERANGE ? "out of range: expected" : "invalid: expected", what);
}

static int apply_ack(Settings *s, const char *value, char *err, size_t err_size) {
        size_t n = strlen(value);

        if (n == 0 || n > ACK_TEXT_MAX)
                return option_error(err, err_size, "expected 1 to %d bytes", ACK_TEXT_MAX);
        /* A control byte in the reply would break line framing or terminals. */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                        return option_error(err, err_size, "control characters are not allowed");
        memcpy(s->ack, value, n + 1);
        s->ack_len = n;
        return 0;
}

static int apply_listen(Settings *s, const char *value, char *err, size_t err_size) {
        char quoted[ESCAPE_QUOTE_SIZE];
        const char *reason = NULL;

        if (s->n_listen >= SETTINGS_LISTEN_MAX)
                return option_error(err, err_size, "too many listeners (at most %d)", SETTINGS_LISTEN_MAX);
        if (listen_address_parse(value, &s->listen[s->n_listen], &reason) < 0)
                return option_error(err, err_size, "invalid address '%s': %s",
                                    escape_string(quoted, sizeof quoted, value), reason);
        s->n_listen++;
        return 0;
}

static int apply_proxy_from(Settings *s, const char *value, char *err, size_t err_size) {
        char quoted[ESCAPE_QUOTE_SIZE];
        const char *reason = NULL;

        if (s->n_proxy_from >= SETTINGS_PROXY_FROM_MAX)
                return option_error(err, err_size, "too many prefixes (at most %d)",
                                    SETTINGS_PROXY_FROM_MAX);
        if (address_prefix_parse(value, &s->proxy_from[s->n_proxy_from], &reason) < 0)
                return option_error(err, err_size, "invalid prefix '%s': %s",
                                    escape_string(quoted, sizeof quoted, value), reason);
        s->n_proxy_from++;
        return 0;
}

static int apply_threads(Settings *s, const char *value, char *err, size_t err_size) {
        uint64_t v;
        int r;

        if (strcmp(value, "auto") == 0) {
                s->threads = 0;
                return 0;
        }
        r = parse_uint64(value, 1, SETTINGS_THREADS_MAX, &v);
        if (r < 0)
                return range_error(r, err, err_size, "auto or 1..256");
        s->threads = (unsigned)v;
        return 0;
}

static int apply_user(Settings *s, const char *value, char *err, size_t err_size) {
        size_t n = strlen(value);

        if (n == 0 || n > USER_NAME_MAX || value[strcspn(value, " \t:/")] != '\0' ||
            (unsigned char)value[0] < 0x21)
                return option_error(err, err_size, "expected a user name");
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                        return option_error(err, err_size, "expected a user name");
        memcpy(s->user, value, n + 1);
        return 0;
}

static int apply_log_level(Settings *s, const char *value, char *err, size_t err_size) {
        int r = log_level_from_string(value);

        if (r < 0 || r < LOG_ERR)
                return option_error(err, err_size, "expected error, warning, notice, info or debug");
        s->log_level = r;
        return 0;
}

/* A duration option into *ret, from min_ms to max_ms; `what` names the range for errors. */
static int apply_duration(const char *value, uint64_t min_ms, uint64_t max_ms, uint64_t *ret,
                          const char *what, char *err, size_t err_size) {
        int r = parse_duration_ms(value, min_ms, max_ms, ret);

        return r < 0 ? range_error(r, err, err_size, what) : 0;
}

int settings_apply(Settings *s, OptionId id, const char *value, char *err, size_t err_size) {
        int r;

        switch (id) {
        case OPTION_LISTEN:
                return apply_listen(s, value, err, err_size);
        case OPTION_THREADS:
                return apply_threads(s, value, err, err_size);
        case OPTION_MAX_CONNECTIONS:
                r = parse_uint64(value, 1, 1000000, &s->max_connections);
                return r < 0 ? range_error(r, err, err_size, "1..1000000") : 0;
        case OPTION_MAX_MESSAGE:
                r = parse_size(value, 1, ACK_MESSAGE_MAX, &s->max_message);
                return r < 0 ? range_error(r, err, err_size, "1..16M bytes") : 0;
        case OPTION_IDLE_TIMEOUT:
                return apply_duration(value, 1, 24 * 3600 * 1000, &s->idle_timeout_ms,
                                      "a duration from 1ms to 24h", err, err_size);
        case OPTION_DRAIN_TIMEOUT:
                return apply_duration(value, 0, 3600 * 1000, &s->drain_timeout_ms, "a duration from 0 to 1h",
                                      err, err_size);
        case OPTION_ACK:
                return apply_ack(s, value, err, err_size);
        case OPTION_PROXY_FROM:
                return apply_proxy_from(s, value, err, err_size);
        case OPTION_PROXY_TIMEOUT:
                return apply_duration(value, 1, 3600 * 1000, &s->proxy_timeout_ms,
                                      "a duration from 1ms to 1h", err, err_size);
        case OPTION_SHUTDOWN_DELAY:
                return apply_duration(value, 0, 3600 * 1000, &s->shutdown_delay_ms,
                                      "a duration from 0 to 1h", err, err_size);
        case OPTION_USER:
                return apply_user(s, value, err, err_size);
        case OPTION_LOG_LEVEL:
                return apply_log_level(s, value, err, err_size);
        default:
                return option_error(err, err_size, "not a setting");
        }
}

void settings_init(Settings *s) {
        char err[SETTINGS_ERROR_MAX];

        *s = (Settings){ 0 };
        for (OptionId id = 0; id < _OPTION_MAX; id++) {
                if (!option_table[id].default_value || !(option_table[id].flags & OPTION_IN_CONFIG) ||
                    id == OPTION_LISTEN)
                        continue;
                /* The defaults are literals in the table: failing to parse one is a bug. */
                if (settings_apply(s, id, option_table[id].default_value, err, sizeof err) < 0)
                        abort();
        }
}

static void apply_default_listen(Settings *s) {
        char err[SETTINGS_ERROR_MAX];

        if (s->n_listen == 0 &&
            settings_apply(s, OPTION_LISTEN, option_table[OPTION_LISTEN].default_value, err, sizeof err) < 0)
                abort();
}

static int option_by_name(const char *name) {
        for (OptionId id = 0; id < _OPTION_MAX; id++)
                if (strcmp(option_table[id].name, name) == 0)
                        return (int)id;
        return -ENOENT;
}

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

int settings_parse_config(Settings *s, FILE *f, const char *filename, char *err, size_t err_size) {
        _cleanup_(freep) char *buf = NULL;
        char reason[SETTINGS_ERROR_MAX], quoted[ESCAPE_QUOTE_SIZE];
        unsigned lineno = 0;
        size_t cap = 0;
        ssize_t k;

        while ((k = getline(&buf, &cap, f)) >= 0) {
                char *key, *value, *eq, *line = buf;
                size_t n;
                int id;

                lineno++;
                if (k > CONFIG_LINE_MAX)
                        return option_error(err, err_size, "%s:%u: line too long (at most %d bytes)",
                                            filename, lineno, CONFIG_LINE_MAX);
                if (memchr(buf, '\0', (size_t)k))
                        return option_error(err, err_size, "%s:%u: NUL byte in line", filename, lineno);
                /* Editors on Windows start a UTF-8 file with a byte-order mark. */
                if (lineno == 1 && strncmp(line, UTF8_BOM, STRLEN(UTF8_BOM)) == 0)
                        line += STRLEN(UTF8_BOM);

                key = strip(line);
                if (*key == '\0' || *key == '#' || *key == ';')
                        continue;

                eq = strchr(key, '=');
                if (!eq)
                        return option_error(err, err_size, "%s:%u: expected \"key = value\"", filename,
                                            lineno);
                *eq = '\0';
                key = strip(key);
                value = strip(eq + 1);

                /* Double quotes keep leading or trailing spaces in a value. */
                n = strlen(value);
                if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
                        value[n - 1] = '\0';
                        value++;
                }

                id = option_by_name(key);
                if (id < 0 || !(option_table[id].flags & OPTION_IN_CONFIG))
                        return option_error(err, err_size, "%s:%u: unknown setting '%s'", filename, lineno,
                                            escape_string(quoted, sizeof quoted, key));
                if (settings_apply(s, (OptionId)id, value, reason, sizeof reason) < 0)
                        return option_error(err, err_size, "%s:%u: %s: %s", filename, lineno, key, reason);
        }
        /* A directory opens, then fails to read with EISDIR: say so. */
        if (ferror(f))
                return option_error(err, err_size, "%s: read error: %s", filename,
                                    strerror(errno > 0 ? errno : EIO));
        return 0;
}

int settings_load(const CommandLine *c, Settings *ret, char *err, size_t err_size) {
        const char *path = c->config_path ? c->config_path : DEFAULT_CONFIG_PATH;
        char reason[SETTINGS_ERROR_MAX];
        bool cli_listen = false, cli_proxy_from = false;
        FILE *f;
        int r;

        settings_init(ret);

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (r != -ENOENT || c->config_explicit) {
                        (void)snprintf(err, err_size, "%s: %s", path, strerror(-r));
                        return r;
                }
        } else {
                r = settings_parse_config(ret, f, path, err, err_size);
                fclose(f);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < c->n_values; i++) {
                const OptionValue *o = &c->values[i];

                /* The command line's listeners and prefixes replace the file's, they do not
                 * add to them. */
                if (o->id == OPTION_LISTEN && !cli_listen) {
                        ret->n_listen = 0;
                        cli_listen = true;
                }
                if (o->id == OPTION_PROXY_FROM && !cli_proxy_from) {
                        ret->n_proxy_from = 0;
                        cli_proxy_from = true;
                }
                r = settings_apply(ret, o->id, o->value, reason, sizeof reason);
                if (r < 0)
                        return option_error(err, err_size, "--%s: %s", option_table[o->id].name, reason);
        }

        apply_default_listen(ret);
        if (c->verbose > 0)
                ret->log_level = MAX(ret->log_level, MIN(LOG_NOTICE + (int)c->verbose, LOG_DEBUG));
        return 0;
}

int command_line_parse(int argc, char *argv[], CommandLine *ret, char *err, size_t err_size) {
        CommandLine c = { 0 };
        OptionParser parser;
        const char *value;
        size_t id;
        int r;

        r = option_parser_init(&parser, option_table, _OPTION_MAX, 0, argc, argv);
        if (r < 0)
                return r;

        c.values = calloc((size_t)argc + 1, sizeof *c.values);
        if (!c.values)
                return -ENOMEM;

        while ((r = option_parser_next(&parser, &id, &value, err, err_size)) > 0)
                switch ((OptionId)id) {
                case OPTION_CONFIG:
                        c.config_path = value;
                        c.config_explicit = true;
                        break;
                case OPTION_VERBOSE:
                        c.verbose++;
                        break;
                case OPTION_ALLOW_ROOT:
                        c.allow_root = true;
                        break;
                case OPTION_VERSION:
                        c.version = true;
                        break;
                case OPTION_HELP:
                        c.help = true;
                        break;
                default:
                        /* A setting: kept in order, applied over the config file (again on reload). */
                        c.values[c.n_values++] = (OptionValue){ .id = (OptionId)id, .value = value };
                }
        if (r < 0)
                goto fail;

        if (option_parser_operands(&parser) < argc) {
                char quoted[ESCAPE_QUOTE_SIZE];

                option_error(err, err_size, "unexpected argument '%s'",
                             escape_string(quoted, sizeof quoted, argv[option_parser_operands(&parser)]));
                goto fail;
        }

        *ret = c;
        return 0;

fail:
        command_line_done(&c);
        return -EINVAL;
}

void command_line_done(CommandLine *c) {
        free(c->values);
        *c = (CommandLine){ 0 };
}

void settings_help(FILE *f, const char *program) {
        fprintf(f,
                "Usage: %s [OPTIONS]\n"
                "\n"
                "A TCP acknowledgement daemon: every message it receives is answered \"%s\".\n"
                "Command-line options override the configuration file (see ackd.conf(5)).\n"
                "\n",
                program, ACK_DEFAULT_TEXT);
        option_help(f, option_table, _OPTION_MAX, 0);
        fprintf(f, "\n"
                   "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n"
                   "Exit status: 0 stopped cleanly, 1 failed, 2 usage or configuration error.\n"
                   "See ackd(8) for details.\n");
}
