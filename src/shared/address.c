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

/* An interface name as Linux allows it (dev_valid_name()), or an index: digits, not 0. */
static bool scope_valid(const char *s, size_t n) {
        char digits[ADDRESS_SCOPE_MAX + 1];
        size_t n_digits = 0;
        uint64_t v;

        if (n == 0 || n > ADDRESS_SCOPE_MAX || (n == 1 && s[0] == '.') ||
            (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++) {
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || strchr("/:%[]", s[i]))
                        return false;
                n_digits += s[i] >= '0' && s[i] <= '9';
        }
        if (n_digits < n)
                return true;
        memcpy(digits, s, n);
        digits[n] = '\0';
        return parse_uint64(digits, 1, INT32_MAX, &v) == 0;
}

/* What goes between the brackets of [V6]:PORT: an IPv6 literal, and for a link-local
 * one (which means nothing without an interface) a %SCOPE. n bytes at s. */
static int parse_ipv6_host(const char *s, size_t n, ListenAddress *a, const char **ret_reason) {
        const char *percent = memchr(s, '%', n);
        size_t n_addr = percent ? (size_t)(percent - s) : n;
        char v6[INET6_ADDRSTRLEN + 1];
        struct in6_addr in6;

        if (n_addr == 0 || n_addr >= sizeof v6)
                return fail(ret_reason, "invalid IPv6 address");
        memcpy(v6, s, n_addr);
        v6[n_addr] = '\0';
        if (inet_pton(AF_INET6, v6, &in6) != 1)
                return fail(ret_reason, "invalid IPv6 address");

        if (percent) {
                size_t n_scope = n - n_addr - 1;

                if (!IN6_IS_ADDR_LINKLOCAL(&in6))
                        return fail(ret_reason, "only a link-local address (fe80::/10) takes a %scope");
                if (!scope_valid(percent + 1, n_scope))
                        return fail(ret_reason, "invalid scope: expected %IFNAME or %INDEX");
                memcpy(a->scope, percent + 1, n_scope);
                a->scope[n_scope] = '\0';
        } else if (IN6_IS_ADDR_LINKLOCAL(&in6))
                return fail(ret_reason, "link-local address needs a scope, e.g. [fe80::1%eth0]:9999");
        memcpy(a->host, v6, n_addr + 1);
        return 0;
}

int listen_mode_parse(const char *s, size_t n, ProtocolMode *ret_mode, bool *ret_proxy) {
        static const char suffix[] = "+proxy";
        char mode[16];
        bool proxy = false;
        int m;

        if (n >= STRLEN(suffix) && memcmp(s + n - STRLEN(suffix), suffix, STRLEN(suffix)) == 0) {
                proxy = true;
                n -= STRLEN(suffix);
        }
        if (n >= sizeof mode)
                return -EINVAL;
        memcpy(mode, s, n);
        mode[n] = '\0';
        if (n == 0 && proxy)
                m = PROTOCOL_ONESHOT;
        else if (strcmp(mode, "metrics") == 0 && !proxy)
                m = PROTOCOL_METRICS;
        else
                m = protocol_mode_from_string(mode);
        if (m < 0)
                return -EINVAL;
        *ret_mode = (ProtocolMode)m;
        *ret_proxy = proxy;
        return 0;
}

const char *listen_mode_format(ProtocolMode mode, bool proxy, char *buf, size_t size) {
        (void)snprintf(buf, size, "%s%s", protocol_mode_to_string(mode), proxy ? "+proxy" : "");
        return buf;
}

static int parse_unix(const char *path, ListenAddress *a, const char **ret_reason) {
        size_t n = strlen(path);

        if (n == 0 || (path[0] == '@' && n == 1))
                return fail(ret_reason, "empty unix socket path");
        if (n > ADDRESS_PATH_MAX)
                return fail(ret_reason, "unix socket path too long (at most 107 bytes)");
        if (path[0] != '/' && path[0] != '@')
                return fail(ret_reason, "unix socket path must be absolute (or @abstract)");
        a->kind = ADDRESS_UNIX;
        memcpy(a->path, path, n + 1);
        return 0;
}

/* [V6]:PORT, s at the '['. */
static int parse_bracketed(const char *s, ListenAddress *a, const char **ret_reason) {
        const char *close = strchr(s, ']');

        if (!close || close[1] != ':')
                return fail(ret_reason, "expected [IPV6]:PORT");
        if (parse_ipv6_host(s + 1, (size_t)(close - s - 1), a, ret_reason) < 0)
                return -EINVAL;
        a->kind = ADDRESS_INET;
        a->ipv6 = true;
        return parse_port(close + 2, &a->port, ret_reason);
}

/* HOST:PORT, :PORT or PORT. */
static int parse_host_port(const char *s, ListenAddress *a, const char **ret_reason) {
        const char *colon = strrchr(s, ':');
        size_t n;

        if (!colon) {
                /* A bare port, as in systemd's ListenStream=9999. */
                a->kind = ADDRESS_ANY;
                if (parse_port(s, &a->port, ret_reason) < 0)
                        return fail(ret_reason, "expected HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH");
                return 0;
        }
        n = (size_t)(colon - s);
        if (n == 0)
                a->kind = ADDRESS_ANY;
        else {
                if (memchr(s, ':', n))
                        return fail(ret_reason, "IPv6 addresses need brackets, e.g. [::1]:9999");
                if (n > ADDRESS_HOST_MAX)
                        return fail(ret_reason, "host name too long");
                memcpy(a->host, s, n);
                a->host[n] = '\0';
                if (all_digits_and_dots(a->host)) {
                        struct in_addr in4;

                        if (inet_pton(AF_INET, a->host, &in4) != 1)
                                return fail(ret_reason, "invalid IPv4 address");
                } else if (!host_name_valid(a->host))
                        return fail(ret_reason, "invalid host name");
                a->kind = ADDRESS_INET;
        }
        return parse_port(colon + 1, &a->port, ret_reason);
}

int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason) {
        ListenAddress a = { .mode = PROTOCOL_ONESHOT };
        const char *at;
        int r;

        if (!s || !*s)
                return fail(ret_reason, "empty address");

        /* MODE@ prefix. '@' may also start an abstract unix name, so only look before "unix:". */
        at = strchr(s, '@');
        if (at && strncmp(s, "unix:", 5) != 0) {
                if (listen_mode_parse(s, (size_t)(at - s), &a.mode, &a.proxy) < 0)
                        return fail(ret_reason, "unknown mode (use oneshot, line or metrics; "
                                                "oneshot+proxy or line+proxy)");
                s = at + 1;
        }

        if (strncmp(s, "unix:", 5) == 0)
                r = parse_unix(s + 5, &a, ret_reason);
        else if (s[0] == '[')
                r = parse_bracketed(s, &a, ret_reason);
        else
                r = parse_host_port(s, &a, ret_reason);
        if (r < 0)
                return r;
        *ret = a;
        return 0;
}

const char *listen_address_format(const ListenAddress *a, char *buf, size_t size) {
        char mode[LISTEN_MODE_STRING_MAX];

        (void)listen_mode_format(a->mode, a->proxy, mode, sizeof mode);

        switch (a->kind) {
        case ADDRESS_UNIX:
                (void)snprintf(buf, size, "%s@unix:%s", mode, a->path);
                break;
        case ADDRESS_ANY:
                (void)snprintf(buf, size, "%s@:%u", mode, a->port);
                break;
        case ADDRESS_INET:
                if (a->ipv6)
                        (void)snprintf(buf, size, "%s@[%s%s%s]:%u", mode, a->host, *a->scope ? "%" : "",
                                       a->scope, a->port);
                else
                        (void)snprintf(buf, size, "%s@%s:%u", mode, a->host, a->port);
                break;
        }
        return buf;
}

bool listen_address_equal(const ListenAddress *a, const ListenAddress *b) {
        char x[ADDRESS_STRING_MAX], y[ADDRESS_STRING_MAX];

        return strcmp(listen_address_format(a, x, sizeof x), listen_address_format(b, y, sizeof y)) == 0;
}

static void format_in6(const struct sockaddr_in6 *in6, const char *scope, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];

        (void)inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        (void)snprintf(buf, size, "[%s%s%s]:%u", ip, scope ? "%" : "", scope ? scope : "",
                       ntohs(in6->sin6_port));
}

const char *sockaddr_format_local(const struct sockaddr *sa, socklen_t len, const char *scope, char *buf,
                                  size_t size) {
        if (len >= (socklen_t)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                char number[16];

                if (in6->sin6_scope_id != 0 && (!scope || !*scope)) {
                        (void)snprintf(number, sizeof number, "%u", (unsigned)in6->sin6_scope_id);
                        scope = number;
                }
                format_in6(in6, in6->sin6_scope_id != 0 ? scope : NULL, buf, size);
                return buf;
        }
        return sockaddr_format(sa, len, buf, size);
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
                } else
                        format_in6(in6, NULL, buf, size);
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

int address_prefix_parse(const char *s, AddressPrefix *ret, const char **ret_reason) {
        char text[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        AddressPrefix p = { 0 };
        unsigned max;
        uint64_t bits;

        if (n == 0 || n >= sizeof text)
                return fail(ret_reason, "expected ADDRESS or ADDRESS/BITS");
        memcpy(text, s, n);
        text[n] = '\0';
        if (inet_pton(AF_INET, text, p.addr) == 1) {
                p.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, text, p.addr) == 1) {
                p.family = AF_INET6;
                max = 128;
        } else
                return fail(ret_reason, "expected an IPv4 or IPv6 address, optionally /BITS");
        bits = max;
        if (slash && parse_uint64(slash + 1, 0, max, &bits) < 0)
                return fail(ret_reason, p.family == AF_INET ? "prefix length must be 0..32"
                                                            : "prefix length must be 0..128");
        p.bits = (uint8_t)bits;
        for (unsigned i = p.bits; i < max; i++)
                if (p.addr[i / 8] & (0x80 >> (i % 8)))
                        return fail(
                                ret_reason,
                                "host bits set after the prefix length (e.g. 10.0.0.0/8, not 10.1.2.3/8)");
        *ret = p;
        return 0;
}

const char *address_prefix_format(const AddressPrefix *p, char *buf, size_t size) {
        char text[INET6_ADDRSTRLEN];

        (void)inet_ntop(p->family, p->addr, text, sizeof text);
        (void)snprintf(buf, size, "%s/%u", text, p->bits);
        return buf;
}

static bool prefix_bits_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
        if (memcmp(a, b, bits / 8) != 0)
                return false;
        if (bits % 8 == 0)
                return true;
        return ((a[bits / 8] ^ b[bits / 8]) & (uint8_t)(0xff << (8 - bits % 8))) == 0;
}

bool address_prefix_match(const AddressPrefix *p, const struct sockaddr *sa, socklen_t len) {
        const uint8_t *addr;
        int family;

        if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
                family = AF_INET;
                addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
                const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

                family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
                addr = family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr;
        } else
                return false;
        return family == p->family && prefix_bits_equal(addr, p->addr, p->bits);
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
