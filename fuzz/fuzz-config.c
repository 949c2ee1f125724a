/* SPDX-License-Identifier: MIT */
/*
 * The configuration file parser (settings.c): any file, read through
 * settings_parse_config() as ackd reads /etc/ackd/ackd.conf, either applies
 * or fails with "FILE:LINE: ..." and leaves settings that are all in range,
 * even when it fails half-way (a reload keeps the running configuration, but
 * nothing may rely on that).
 */
#include <errno.h>

#include "fuzz-settings.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[SETTINGS_ERROR_MAX];
        char *buf;
        Settings s;
        FILE *f;
        int r;

        /* A copy of exactly the input's size, so the parser cannot read past it unnoticed. */
        buf = malloc(size > 0 ? size : 1);
        fuzz_assert(buf);
        if (size > 0)
                memcpy(buf, data, size);
        f = fmemopen(buf, size, "r");
        if (!f) {
                /* fmemopen() refuses an empty buffer on some glibc versions. */
                fuzz_assert(size == 0);
                free(buf);
                return 0;
        }

        settings_init(&s);
        fuzz_check_settings(&s);
        memset(err, 'x', sizeof err);
        r = settings_parse_config(&s, f, "fuzz.conf", err, sizeof err);
        fclose(f);
        if (r < 0) {
                fuzz_assert(r == -EINVAL);
                fuzz_check_error(err, sizeof err);
                fuzz_assert(strncmp(err, "fuzz.conf:", STRLEN("fuzz.conf:")) == 0);
        }
        fuzz_check_settings(&s);

        free(buf);
        return 0;
}
