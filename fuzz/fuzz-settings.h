/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What every Settings must satisfy, whatever input produced it (and after a
 * parse that failed half-way): each value within the range its option
 * documents, each listen address canonical.
 */

#include <syslog.h>

#include "fuzz.h"
#include "settings.h"

static inline void fuzz_check_settings(const Settings *s) {
        fuzz_assert(s->n_listen <= SETTINGS_LISTEN_MAX);
        for (size_t i = 0; i < s->n_listen; i++) {
                char buf[ADDRESS_STRING_MAX];
                ListenAddress again;

                listen_address_format(&s->listen[i], buf, sizeof buf);
                fuzz_assert(listen_address_parse(buf, &again, NULL) == 0);
                fuzz_assert(listen_address_equal(&s->listen[i], &again));
        }
        fuzz_assert(s->threads <= SETTINGS_THREADS_MAX);
        fuzz_assert(s->max_connections >= 1 && s->max_connections <= 1000000);
        fuzz_assert(s->max_message >= 1 && s->max_message <= ACK_MESSAGE_MAX);
        fuzz_assert(s->idle_timeout_ms >= 1 && s->idle_timeout_ms <= 24 * 3600 * 1000);
        fuzz_assert(s->drain_timeout_ms <= 3600 * 1000);
        fuzz_assert(s->ack_len >= 1 && s->ack_len <= ACK_TEXT_MAX && s->ack_len == strlen(s->ack));
        for (size_t i = 0; i < s->ack_len; i++)
                fuzz_assert((unsigned char)s->ack[i] >= 0x20 && s->ack[i] != 0x7f);
        fuzz_assert(s->log_level >= LOG_ERR && s->log_level <= LOG_DEBUG);
        fuzz_assert(strlen(s->user) <= USER_NAME_MAX);
        for (const char *c = s->user; *c; c++)
                fuzz_assert((unsigned char)*c > 0x20 && *c != 0x7f && !strchr(":/", *c));
}

/* An error message: NUL-terminated within its buffer, and saying something. */
static inline void fuzz_check_error(const char *err, size_t size) {
        fuzz_assert(memchr(err, '\0', size));
        fuzz_assert(err[0] != '\0');
}
