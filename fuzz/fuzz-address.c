/* SPDX-License-Identifier: MIT */
/*
 * Listen addresses (address.c). Whatever listen_address_parse() accepts must
 * format to a string that parses back to the same address, and what it refuses
 * must come with a reason. sockaddr_format() must cope with any bytes the
 * kernel could hand back as a peer or local address of each family, at every
 * length up to the family's size, and never write a control byte (it ends up
 * in the log). sockaddr_un_set() must fill a sockaddr_un that formats back to
 * the path it was given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>

#include "address.h"
#include "fuzz.h"

static void assert_printable(const char *s) {
        for (; *s; s++)
                fuzz_assert((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static bool printable(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

static void check_listen_address(const char *s) {
        ListenAddress a, b;
        char buf[ADDRESS_STRING_MAX], again[ADDRESS_STRING_MAX];
        const char *reason = NULL;
        int r;

        r = listen_address_parse(s, &a, &reason);
        if (r < 0) {
                fuzz_assert(r == -EINVAL);
                fuzz_assert(reason && *reason);
                return;
        }

        fuzz_assert(a.mode == PROTOCOL_ONESHOT || a.mode == PROTOCOL_LINE || a.mode == PROTOCOL_METRICS);
        /* +proxy only in front of an ack protocol. */
        fuzz_assert(!a.proxy || a.mode != PROTOCOL_METRICS);
        switch (a.kind) {
        case ADDRESS_UNIX:
                fuzz_assert(strlen(a.path) >= 1 && strlen(a.path) <= ADDRESS_PATH_MAX);
                fuzz_assert(a.path[0] == '/' || (a.path[0] == '@' && a.path[1] != '\0'));
                break;
        case ADDRESS_INET:
                fuzz_assert(strlen(a.host) >= 1 && strlen(a.host) <= ADDRESS_HOST_MAX);
                /* A scope only on an IPv6 literal, and only printable bytes (it is logged). */
                fuzz_assert(strlen(a.scope) <= ADDRESS_SCOPE_MAX);
                fuzz_assert(a.ipv6 || !*a.scope);
                assert_printable(a.scope);
                break;
        case ADDRESS_ANY:
                break;
        default:
                fuzz_assert(!"unknown address kind");
        }

        /* The canonical form fits its buffer and parses back to the same address. */
        listen_address_format(&a, buf, sizeof buf);
        fuzz_assert(strlen(buf) < sizeof buf - 1);
        reason = NULL;
        r = listen_address_parse(buf, &b, &reason);
        if (r < 0)
                fprintf(stderr, "'%s' formats as '%s', which does not parse: %s\n", s, buf, reason);
        fuzz_assert(r == 0);
        fuzz_assert(listen_address_equal(&a, &b));
        fuzz_assert(a.mode == b.mode && a.proxy == b.proxy && a.kind == b.kind && a.ipv6 == b.ipv6 &&
                    a.port == b.port);
        fuzz_assert(strcmp(a.host, b.host) == 0 && strcmp(a.path, b.path) == 0);
        fuzz_assert(a.kind != ADDRESS_INET || strcmp(a.scope, b.scope) == 0);
        fuzz_assert(strcmp(listen_address_format(&b, again, sizeof again), buf) == 0);
}

/* The input's bytes as a sockaddr of the given family, in a buffer of exactly len bytes. */
static void check_sockaddr(const uint8_t *data, size_t size, sa_family_t family, size_t max_len,
                           size_t out_size) {
        size_t len = size < max_len ? size : max_len;
        uint8_t *raw = malloc(len > 0 ? len : 1);
        char *out = malloc(out_size);

        fuzz_assert(raw && out);
        if (len > 0)
                memcpy(raw, data, len);
        if (len >= sizeof(sa_family_t))
                memcpy(raw + offsetof(struct sockaddr, sa_family), &family, sizeof family);

        sockaddr_format((const struct sockaddr *)raw, (socklen_t)len, out, out_size);
        fuzz_assert(strlen(out) < out_size);
        assert_printable(out);

        /* And at full size, never truncated. */
        {
                char full[ADDRESS_STRING_MAX];

                sockaddr_format((const struct sockaddr *)raw, (socklen_t)len, full, sizeof full);
                fuzz_assert(strlen(full) < sizeof full - 1);
                assert_printable(full);
                fuzz_assert(strncmp(out, full, out_size - 1) == 0);
        }

        free(out);
        free(raw);
}

static void check_sockaddr_un_set(const char *path) {
        struct sockaddr_un sun;
        char buf[ADDRESS_STRING_MAX], want[ADDRESS_STRING_MAX];
        socklen_t len = 0;

        if (sockaddr_un_set(&sun, path, &len) < 0) {
                fuzz_assert(strlen(path) == 0 || strlen(path) > ADDRESS_PATH_MAX);
                return;
        }
        fuzz_assert(len > offsetof(struct sockaddr_un, sun_path) && len <= sizeof sun);
        fuzz_assert(sun.sun_family == AF_UNIX);
        sockaddr_format((const struct sockaddr *)&sun, len, buf, sizeof buf);
        if (printable(path)) {
                snprintf(want, sizeof want, "unix:%s", path);
                fuzz_assert(strcmp(buf, want) == 0);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const sa_family_t families[] = { AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC, AF_NETLINK };
        char *s = fuzz_strndup(data, size);
        size_t out_size = 1 + (size > 0 ? data[0] % 64 : 0);

        check_listen_address(s);
        check_sockaddr_un_set(s);

        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
                size_t max_len = families[i] == AF_INET    ? sizeof(struct sockaddr_in)
                                 : families[i] == AF_INET6 ? sizeof(struct sockaddr_in6)
                                 : families[i] == AF_UNIX  ? sizeof(struct sockaddr_un)
                                                           : sizeof(struct sockaddr_storage);

                check_sockaddr(data, size, families[i], max_len, out_size);
        }

        free(s);
        return 0;
}
