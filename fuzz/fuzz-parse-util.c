/* SPDX-License-Identifier: MIT */
/*
 * The strict value parsers (parse-util.c) against models written with 128-bit
 * arithmetic: parse_uint64(), parse_size() and parse_duration_ms() must accept
 * exactly the documented syntax, return the exact value or -ERANGE outside
 * [min, max], and never -ERANGE for bad syntax unless the digits alone
 * overflow. format_duration_ms() must print what parse_duration_ms() reads
 * back as the same number of milliseconds.
 *
 * Input: byte 0 picks the bounds, the rest is the string (up to a NUL).
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "parse-util.h"

__extension__ typedef unsigned __int128 u128;

typedef struct Expect {
        int r;                /* 0, -EINVAL or -ERANGE */
        bool digits_overflow; /* the leading digits alone exceed 64 bits: -ERANGE is as good as -EINVAL */
        u128 value;
} Expect;

typedef struct Unit {
        const char *suffix;
        uint64_t factor;
} Unit;

static const Unit size_units[] = {
        { "", 1 },
        { "K", UINT64_C(1) << 10 },
        { "KiB", UINT64_C(1) << 10 },
        { "M", UINT64_C(1) << 20 },
        { "MiB", UINT64_C(1) << 20 },
        { "G", UINT64_C(1) << 30 },
        { "GiB", UINT64_C(1) << 30 },
};

static const Unit duration_units[] = {
        { "", 1000 },   { "s", 1000 },    { "sec", 1000 },  { "ms", 1 },
        { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
};

/* Leading decimal digits as a 128-bit number (saturating). Returns how many there were. */
static size_t digits(const char *s, u128 *ret, bool *overflow) {
        u128 v = 0;
        size_t n = 0;

        *overflow = false;
        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                if (v <= UINT64_MAX)
                        v = v * 10 + (u128)(s[n] - '0');
                if (v > UINT64_MAX)
                        *overflow = true;
        }
        *ret = v;
        return n;
}

static const Unit *find_unit(const Unit *units, size_t n, const char *suffix) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(units[i].suffix, suffix) == 0)
                        return &units[i];
        return NULL;
}

static Expect finish(Expect e, bool syntax_ok, uint64_t min, uint64_t max) {
        if (!syntax_ok)
                e.r = -EINVAL;
        else if (e.digits_overflow || e.value < min || e.value > max)
                e.r = -ERANGE;
        else
                e.r = 0;
        return e;
}

static Expect model_uint64(const char *s, uint64_t min, uint64_t max) {
        Expect e = { 0 };
        size_t n = digits(s, &e.value, &e.digits_overflow);

        return finish(e, n > 0 && s[n] == '\0', min, max);
}

static Expect model_size(const char *s, uint64_t min, uint64_t max) {
        Expect e = { 0 };
        size_t n = digits(s, &e.value, &e.digits_overflow);
        const Unit *u = find_unit(size_units, sizeof size_units / sizeof size_units[0], s + n);

        if (u && !e.digits_overflow)
                e.value *= u->factor;
        return finish(e, n > 0 && u, min, max);
}

static Expect model_duration(const char *s, uint64_t min, uint64_t max) {
        Expect e = { 0 };
        size_t n = digits(s, &e.value, &e.digits_overflow), k = 0;
        u128 frac = 0, scale = 1;
        const char *p = s + n;
        const Unit *u;

        if (*p == '.') {
                p++;
                for (; p[k] >= '0' && p[k] <= '9'; k++)
                        if (k < 9) {
                                frac = frac * 10 + (u128)(p[k] - '0');
                                scale *= 10;
                        }
                p += k;
        }
        u = find_unit(duration_units, sizeof duration_units / sizeof duration_units[0], p);
        if (u && !e.digits_overflow)
                e.value = e.value * u->factor + frac * u->factor / scale;
        return finish(e, n > 0 && (s[n] != '.' || (k >= 1 && k <= 9)) && u, min, max);
}

static void check(const char *what, const char *s, int r, uint64_t v, Expect e) {
        bool ok = r == e.r || (e.digits_overflow && e.r == -EINVAL && r == -ERANGE);

        if (ok && r == 0)
                ok = v == e.value;
        if (!ok)
                fprintf(stderr, "%s(\"%s\") = %d, %llu; expected %d, %llu\n", what, s, r,
                        (unsigned long long)v, e.r, (unsigned long long)e.value);
        fuzz_assert(ok);
}

static void check_duration_round_trip(uint64_t ms) {
        char buf[64];
        uint64_t back = 0;
        int r;

        format_duration_ms(buf, sizeof buf, ms);
        r = parse_duration_ms(buf, 0, UINT64_MAX, &back);
        /* parse_duration_ms() refuses durations at or beyond about half of 2^64 ms. */
        if (r == -ERANGE && ms / 1000 > UINT64_MAX / 1000 / 2)
                return;
        if (r != 0 || back != ms)
                fprintf(stderr, "%llu ms formats as \"%s\", which parses as %d, %llu\n",
                        (unsigned long long)ms, buf, r, (unsigned long long)back);
        fuzz_assert(r == 0 && back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Bounds as the daemon and client use them, and the widest the models can check exactly. */
        static const struct {
                uint64_t min, max;
        } bounds[] = {
                { 0, UINT64_MAX / 4 },   { 1, 65535 }, { 1, 16u * 1024 * 1024 },
                { 1, 24 * 3600 * 1000 }, { 0, 0 },     { 1000, 1000 },
        };
        uint64_t min, max, v;
        char *s;
        int r;

        if (size < 1)
                return 0;
        min = bounds[data[0] % (sizeof bounds / sizeof bounds[0])].min;
        max = bounds[data[0] % (sizeof bounds / sizeof bounds[0])].max;
        s = fuzz_strndup(data + 1, size - 1);

        v = 0;
        r = parse_uint64(s, min, max, &v);
        check("parse_uint64", s, r, v, model_uint64(s, min, max));

        v = 0;
        r = parse_size(s, min, max, &v);
        check("parse_size", s, r, v, model_size(s, min, max));

        v = 0;
        r = parse_duration_ms(s, min, max, &v);
        check("parse_duration_ms", s, r, v, model_duration(s, min, max));
        if (r == 0)
                check_duration_round_trip(v);

        /* Any number of milliseconds, from the input's first bytes. */
        if (size >= 9) {
                uint64_t ms;

                memcpy(&ms, data + 1, sizeof ms);
                check_duration_round_trip(ms);
                check_duration_round_trip(ms % (UINT64_C(1) << 40));
        }

        free(s);
        return 0;
}
