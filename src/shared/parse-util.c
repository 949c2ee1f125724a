/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "parse-util.h"

/* Reads leading decimal digits. Returns the number of digits, or -ERANGE on overflow. */
static int read_digits(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        int n = 0;

        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                unsigned d = (unsigned)(s[n] - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return n;
}

static int check_range(uint64_t v, uint64_t min, uint64_t max, uint64_t *ret) {
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int n;

        if (!s)
                return -EINVAL;
        n = read_digits(s, &v);
        if (n < 0)
                return n;
        if (n == 0 || s[n] != '\0')
                return -EINVAL;
        return check_range(v, min, max, ret);
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } units[] = {
                { "", 1 },
                { "K", UINT64_C(1) << 10 },
                { "KiB", UINT64_C(1) << 10 },
                { "M", UINT64_C(1) << 20 },
                { "MiB", UINT64_C(1) << 20 },
                { "G", UINT64_C(1) << 30 },
                { "GiB", UINT64_C(1) << 30 },
        };
        uint64_t v;
        int n;

        if (!s)
                return -EINVAL;
        n = read_digits(s, &v);
        if (n < 0)
                return n;
        if (n == 0)
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(s + n, units[i].suffix) != 0)
                        continue;
                if (v > UINT64_MAX / units[i].factor)
                        return -ERANGE;
                return check_range(v * units[i].factor, min, max, ret);
        }
        return -EINVAL;
}

int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *ret_ms) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {
                { "", 1000 },   { "s", 1000 },    { "sec", 1000 },  { "ms", 1 },
                { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
        };
        uint64_t whole, frac = 0, frac_scale = 1;
        const char *p = s;
        int n;

        if (!s)
                return -EINVAL;
        n = read_digits(p, &whole);
        if (n <= 0)
                return n < 0 ? n : -EINVAL;
        p += n;

        if (*p == '.') {
                p++;
                for (n = 0; *p >= '0' && *p <= '9'; p++, n++) {
                        if (n >= 9) /* beyond nanoseconds: meaningless, refuse */
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t)(*p - '0');
                        frac_scale *= 10;
                }
                if (n == 0)
                        return -EINVAL;
        }

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t unit = units[i].ms;

                if (strcmp(p, units[i].suffix) != 0)
                        continue;
                if (whole > UINT64_MAX / unit / 2)
                        return -ERANGE;
                return check_range(whole * unit + frac * unit / frac_scale, min_ms, max_ms, ret_ms);
        }
        return -EINVAL;
}

const char *format_duration_ms(char *buf, size_t size, uint64_t ms) {
        if (ms % 1000 == 0)
                (void)snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
        else if (ms < 1000)
                (void)snprintf(buf, size, "%llums", (unsigned long long)ms);
        else
                (void)snprintf(buf, size, "%llu.%03llus", (unsigned long long)(ms / 1000),
                               (unsigned long long)(ms % 1000));
        return buf;
}
