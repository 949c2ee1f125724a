/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "macro.h"
#include "parse-util.h"

static int fail(const char **ret_reason, const char *reason) {
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}

static bool host_name_valid(const char *h) {
        size_t n = strlen(h);

        if (n == 0 || n > ADDRESS_HOST_MAX || h[0] == '-' || h[0] == '.')
                return false;
        for (const char *c = h; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '-' || *c == '.' || *c == '_'))
                        return false;
        return true;
}

/* Leading bytes of s[0..n) that are printable ASCII: stops at NUL and at any control or high byte. */
static size_t printable_prefix(const char *s, size_t n) {
        size_t i = 0;

        while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f)
                i++;
        return i;
}

static bool all_digits_and_dots(const char *h) {
        return h[strspn(h, "0123456789.")] == '\0';
}

static int parse_port(const char *s, uint16_t *ret, const char **ret_reason) {
        uint64_t v;

        if (parse_uint64(s, 0, 65535, &v) < 0)
                return fail(ret_reason, "port must be a number from 0 to 65535");
        *ret = (uint16_t)v;
        return 0;
}

int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason) {
        ListenAddress a = { .mode = PROTOCOL_ONESHOT };
        const char *at, *colon;

        if (!s || !*s)
                return fail(ret_reason, "empty address");

        /* MODE@ prefix. '@' may also start an abstract unix name, so only look before "unix:". */
        at = strchr(s, '@');
        if (at && strncmp(s, "unix:", 5) != 0) {
                char mode[16];
                size_t n = (size_t)(at - s);

                if (n == 0 || n >= sizeof mode)
                        return fail(ret_reason, "unknown mode (use oneshot or line)");
                memcpy(mode, s, n);
                mode[n] = '\0';
                a.mode = protocol_mode_from_string(mode);
                if (a.mode < 0)
                        return fail(ret_reason, "unknown mode (use oneshot or line)");
                s = at + 1;
        }

        if (strncmp(s, "unix:", 5) == 0) {
                const char *path = s + 5;
                size_t n = strlen(path);

                if (n == 0 || (path[0] == '@' && n == 1))
                        return fail(ret_reason, "empty unix socket path");
                if (n > ADDRESS_PATH_MAX)
                        return fail(ret_reason, "unix socket path too long (at most 107 bytes)");
                if (path[0] != '/' && path[0] != '@')
                        return fail(ret_reason, "unix socket path must be absolute (or @abstract)");
                a.kind = ADDRESS_UNIX;
                memcpy(a.path, path, n + 1);
                *ret = a;
                return 0;
        }

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                char v6[INET6_ADDRSTRLEN + 1];
                struct in6_addr in6;
                size_t n;

                if (!close || close[1] != ':')
                        return fail(ret_reason, "expected [IPV6]:PORT");
                n = (size_t)(close - s - 1);
                if (n == 0 || n >= sizeof v6)
                        return fail(ret_reason, "invalid IPv6 address");
                memcpy(v6, s + 1, n);
                v6[n] = '\0';
                if (inet_pton(AF_INET6, v6, &in6) != 1)
                        return fail(ret_reason, "invalid IPv6 address");
                a.kind = ADDRESS_INET;
                a.ipv6 = true;
                memcpy(a.host, v6, n + 1);
                if (parse_port(close + 2, &a.port, ret_reason) < 0)
                        return -EINVAL;
                *ret = a;
                return 0;
        }

        colon = strrchr(s, ':');
        if (!colon) {
                /* A bare port, as in systemd's ListenStream=9999. */
                if (parse_port(s, &a.port, ret_reason) < 0)
                        return fail(ret_reason, "expected HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH");
                a.kind = ADDRESS_ANY;
                *ret = a;
                return 0;
        }
        if (colon == s) {
                a.kind = ADDRESS_ANY;
        } else {
                size_t n = (size_t)(colon - s);

                if (memchr(s, ':', n))
                        return fail(ret_reason, "IPv6 addresses need brackets, e.g. [::1]:9999");
                if (n > ADDRESS_HOST_MAX)
                        return fail(ret_reason, "host name too long");
                memcpy(a.host, s, n);
                a.host[n] = '\0';
                if (all_digits_and_dots(a.host)) {
                        struct in_addr in4;

                        if (inet_pton(AF_INET, a.host, &in4) != 1)
                                return fail(ret_reason, "invalid IPv4 address");
                } else if (!host_name_valid(a.host))
                        return fail(ret_reason, "invalid host name");
                a.kind = ADDRESS_INET;
        }
        if (parse_port(colon + 1, &a.port, ret_reason) < 0)
                return -EINVAL;
        *ret = a;
        return 0;
}

const char *listen_address_format(const ListenAddress *a, char *buf, size_t size) {
        const char *mode = protocol_mode_to_string(a->mode);

        switch (a->kind) {
        case ADDRESS_UNIX:
                (void)snprintf(buf, size, "%s@unix:%s", mode, a->path);
                break;
        case ADDRESS_ANY:
                (void)snprintf(buf, size, "%s@:%u", mode, a->port);
                break;
        case ADDRESS_INET:
                (void)snprintf(buf, size, a->ipv6 ? "%s@[%s]:%u" : "%s@%s:%u", mode, a->host, a->port);
                break;
        }
        return buf;
}

bool listen_address_equal(const ListenAddress *a, const ListenAddress *b) {
        char x[ADDRESS_STRING_MAX], y[ADDRESS_STRING_MAX];

        return strcmp(listen_address_format(a, x, sizeof x), listen_address_format(b, y, sizeof y)) == 0;
}

const char *sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];

        /* Too short for its family: never read beyond len. */
        if (len < (socklen_t)sizeof(sa_family_t) ||
            (sa->sa_family == AF_INET && len < (socklen_t)sizeof(struct sockaddr_in)) ||
            (sa->sa_family == AF_INET6 && len < (socklen_t)sizeof(struct sockaddr_in6))) {
                (void)snprintf(buf, size, "unknown");
                return buf;
        }

        switch (sa->sa_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

                (void)inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
                (void)snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        (void)inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof ip);
                        (void)snprintf(buf, size, "%s:%u", ip, ntohs(in6->sin6_port));
                } else {
                        (void)inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
                        (void)snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
                }
                break;
        }
        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
                size_t n = (size_t)len - offsetof(struct sockaddr_un, sun_path);

                if (len <= (socklen_t)offsetof(struct sockaddr_un, sun_path) || n == 0)
                        (void)snprintf(buf, size, "unix");
                else if (un->sun_path[0] == '\0')
                        /* Names may hold any byte and end up in logs: show the printable prefix only. */
                        (void)snprintf(buf, size, "unix:@%.*s",
                                       (int)printable_prefix(un->sun_path + 1, n - 1), un->sun_path + 1);
                else
                        (void)snprintf(buf, size, "unix:%.*s", (int)printable_prefix(un->sun_path, n),
                                       un->sun_path);
                break;
        }
        default:
                (void)snprintf(buf, size, "family-%d", sa->sa_family);
        }
        return buf;
}

int sockaddr_un_set(struct sockaddr_un *sun, const char *path, socklen_t *ret_len) {
        size_t n = strlen(path);

        if (n == 0 || n > ADDRESS_PATH_MAX)
                return -EINVAL;
        *sun = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sun->sun_path, path, n);
        if (path[0] == '@') {
                sun->sun_path[0] = '\0';
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* After "unix": "" (unnamed), ":@NAME" (abstract, NAME may be empty) or ":PATH". */
static int sockaddr_parse_unix(const char *s, struct sockaddr_un *un, socklen_t *ret_len) {
        size_t base = offsetof(struct sockaddr_un, sun_path), n;

        un->sun_family = AF_UNIX;
        if (*s == '\0') {
                *ret_len = (socklen_t)base;
                return 0;
        }
        if (*s != ':')
                return -EINVAL;
        s++;
        n = strlen(s);
        if (s[0] == '@') {
                if (n > sizeof un->sun_path)
                        return -EINVAL;
                memcpy(un->sun_path + 1, s + 1, n - 1);
                *ret_len = (socklen_t)(base + n);
                return 0;
        }
        if (n == 0 || n > sizeof un->sun_path)
                return -EINVAL;
        memcpy(un->sun_path, s, n);
        /* With its NUL, as the kernel reports a bound path, unless the path fills sun_path. */
        *ret_len = (socklen_t)(base + MIN(n + 1, sizeof un->sun_path));
        return 0;
}

/* "A.B.C.D:PORT" or "[V6]:PORT". */
static int sockaddr_parse_inet(const char *s, struct sockaddr_storage *ss, socklen_t *ret_len) {
        const char *colon = strrchr(s, ':');
        char host[INET6_ADDRSTRLEN + 1];
        uint16_t port;
        size_t n;

        if (!colon || parse_port(colon + 1, &port, NULL) < 0)
                return -EINVAL;
        if (s[0] == '[') {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

                n = (size_t)(colon - s) - 1;
                if (n < 2 || n > INET6_ADDRSTRLEN || s[n] != ']')
                        return -EINVAL;
                memcpy(host, s + 1, n - 1);
                host[n - 1] = '\0';
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof *in6;
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *)ss;

                n = (size_t)(colon - s);
                if (n == 0 || n >= INET_ADDRSTRLEN)
                        return -EINVAL;
                memcpy(host, s, n);
                host[n] = '\0';
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof *in;
        }
        return 0;
}

int sockaddr_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct sockaddr_storage ss = { 0 };
        char again[ADDRESS_STRING_MAX];
        socklen_t len;
        int r;

        if (!s)
                return -EINVAL;
        if (strncmp(s, "unix", 4) == 0)
                r = sockaddr_parse_unix(s + 4, (struct sockaddr_un *)&ss, &len);
        else
                r = sockaddr_parse_inet(s, &ss, &len);
        if (r < 0)
                return r;

        /* One spelling per address: refuse what would be shown differently. */
        if (strcmp(sockaddr_format((const struct sockaddr *)&ss, len, again, sizeof again), s) != 0)
                return -EINVAL;
        *ret = ss;
        *ret_len = len;
        return 0;
}
