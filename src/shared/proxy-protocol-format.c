/* SPDX-License-Identifier: MIT */
/*
 * PROXY protocol header builders, for ackc and the tests: v1 lines and v2
 * headers from a connection's two addresses (proxy-protocol.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "proxy-protocol-internal.h"

typedef union SockaddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
} SockaddrUnion;

static int copy_address(SockaddrUnion *u, const struct sockaddr *sa, socklen_t len) {
        memset(u, 0, sizeof *u);
        if (len < (socklen_t)sizeof(sa_family_t))
                return -EINVAL;
        switch (sa->sa_family) {
        case AF_INET:
                if (len < (socklen_t)sizeof u->in)
                        return -EINVAL;
                memcpy(&u->in, sa, sizeof u->in);
                return 0;
        case AF_INET6:
                if (len < (socklen_t)sizeof u->in6)
                        return -EINVAL;
                memcpy(&u->in6, sa, sizeof u->in6);
                return 0;
        case AF_UNIX:
                memcpy(&u->un, sa, MIN((size_t)len, sizeof u->un));
                return 0;
        default:
                return -EAFNOSUPPORT;
        }
}

static void map_to_ipv6(SockaddrUnion *u) {
        struct sockaddr_in in = u->in;

        u->in6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = in.sin_port };
        u->in6.sin6_addr.s6_addr[10] = u->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&u->in6.sin6_addr.s6_addr[12], &in.sin_addr, 4);
}

/* Both addresses in one family, an IPv4 one mapped to IPv6 if the other is IPv6. Returns that family. */
static int address_pair(SockaddrUnion *s, SockaddrUnion *d, const struct sockaddr *src, socklen_t src_len,
                        const struct sockaddr *dst, socklen_t dst_len) {
        int r;

        r = copy_address(s, src, src_len);
        if (r < 0)
                return r;
        r = copy_address(d, dst, dst_len);
        if (r < 0)
                return r;
        if (s->sa.sa_family == AF_INET && d->sa.sa_family == AF_INET6)
                map_to_ipv6(s);
        else if (s->sa.sa_family == AF_INET6 && d->sa.sa_family == AF_INET)
                map_to_ipv6(d);
        if (s->sa.sa_family != d->sa.sa_family)
                return -EAFNOSUPPORT;
        return s->sa.sa_family;
}

int proxy_header_format_v1(char *buf, size_t size, const struct sockaddr *src, socklen_t src_len,
                           const struct sockaddr *dst, socklen_t dst_len) {
        char s_text[INET6_ADDRSTRLEN], d_text[INET6_ADDRSTRLEN];
        SockaddrUnion s, d;
        int family, n;

        if (!src || !dst)
                n = snprintf(buf, size, "PROXY UNKNOWN\r\n");
        else {
                family = address_pair(&s, &d, src, src_len, dst, dst_len);
                if (family < 0)
                        return family;
                if (family == AF_INET) {
                        (void)inet_ntop(AF_INET, &s.in.sin_addr, s_text, sizeof s_text);
                        (void)inet_ntop(AF_INET, &d.in.sin_addr, d_text, sizeof d_text);
                        n = snprintf(buf, size, "PROXY TCP4 %s %s %u %u\r\n", s_text, d_text,
                                     ntohs(s.in.sin_port), ntohs(d.in.sin_port));
                } else if (family == AF_INET6) {
                        (void)inet_ntop(AF_INET6, &s.in6.sin6_addr, s_text, sizeof s_text);
                        (void)inet_ntop(AF_INET6, &d.in6.sin6_addr, d_text, sizeof d_text);
                        n = snprintf(buf, size, "PROXY TCP6 %s %s %u %u\r\n", s_text, d_text,
                                     ntohs(s.in6.sin6_port), ntohs(d.in6.sin6_port));
                } else
                        return -EAFNOSUPPORT;
        }
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return n;
}

/* The v2 address block for a pair in one family; returns its size. */
static size_t v2_block(uint8_t *b, int family, const SockaddrUnion *s, const SockaddrUnion *d) {
        switch (family) {
        case AF_INET:
                memcpy(b, &s->in.sin_addr, 4);
                memcpy(b + 4, &d->in.sin_addr, 4);
                memcpy(b + 8, &s->in.sin_port, 2);
                memcpy(b + 10, &d->in.sin_port, 2);
                return 12;
        case AF_INET6:
                memcpy(b, &s->in6.sin6_addr, 16);
                memcpy(b + 16, &d->in6.sin6_addr, 16);
                memcpy(b + 32, &s->in6.sin6_port, 2);
                memcpy(b + 34, &d->in6.sin6_port, 2);
                return 36;
        default: /* AF_UNIX; copy_address() zeroed what the lengths left out */
                memcpy(b, s->un.sun_path, UNIX_NAME_LEN);
                memcpy(b + UNIX_NAME_LEN, d->un.sun_path, UNIX_NAME_LEN);
                return 2 * UNIX_NAME_LEN;
        }
}

int proxy_header_format_v2(void *buf, size_t size, ProxyCommand command, const struct sockaddr *src,
                           socklen_t src_len, const struct sockaddr *dst, socklen_t dst_len) {
        uint8_t h[PROXY_V2_PREFIX + 2 * UNIX_NAME_LEN];
        uint8_t family_byte = V2_UNSPEC;
        size_t block = 0;

        if (command == PROXY_COMMAND_PROXY && src && dst) {
                SockaddrUnion s, d;
                int family = address_pair(&s, &d, src, src_len, dst, dst_len);

                if (family < 0)
                        return family;
                family_byte = family == AF_INET ? V2_TCP4 : family == AF_INET6 ? V2_TCP6 : V2_UNIX_STREAM;
                block = v2_block(h + PROXY_V2_PREFIX, family, &s, &d);
        }

        memcpy(h, V2_SIGNATURE, V2_SIGNATURE_LEN);
        h[12] = 0x20 | (command == PROXY_COMMAND_PROXY ? 1 : 0);
        h[13] = family_byte;
        h[14] = (uint8_t)(block >> 8);
        h[15] = (uint8_t)block;
        if (size < PROXY_V2_PREFIX + block)
                return -ENOBUFS;
        memcpy(buf, h, PROXY_V2_PREFIX + block);
        return (int)(PROXY_V2_PREFIX + block);
}
