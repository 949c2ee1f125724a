/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol parser; the decisions are listed in
 * proxy-protocol.h (the builders are in proxy-protocol-format.c). Each call rescans from the first byte: a
 * header is short (a v1 line is at most 107 bytes, a v2 header is walked by its TLV lengths), and holding no
 * state is what lets a connection keep nothing but the bytes.
 *
 * Version 1 is read one byte at a time by small scanners (address, port) that
 * refuse a byte as soon as no valid field can start with what they have seen;
 * each check therefore depends only on the bytes up to the one that decides
 * it, which is what makes the verdict the same however the bytes are split.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "macro.h"
#include "proxy-protocol-internal.h"

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_hex_digit(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A dotted quad being read: four decimal numbers 0..255, no leading zeros. */
typedef struct Ipv4Scan {
        unsigned dots;
        unsigned digits; /* of the current number */
        unsigned value;
} Ipv4Scan;

static bool ipv4_scan(Ipv4Scan *s, char c) {
        if (is_digit(c)) {
                if (s->digits > 0 && s->value == 0)
                        return false; /* a leading zero */
                s->value = s->value * 10 + (unsigned)(c - '0');
                s->digits++;
                return s->value <= 255;
        }
        if (c == '.') {
                if (s->digits == 0 || s->dots == 3)
                        return false;
                s->dots++;
                s->digits = s->value = 0;
                return true;
        }
        return false;
}

static bool ipv4_scan_done(const Ipv4Scan *s) {
        return s->dots == 3 && s->digits > 0;
}

/*
 * An IPv6 address being read, in the forms inet_pton(AF_INET6) accepts: 8 groups of
 * 1..4 hex digits, or fewer around one "::" standing for at least one zero group, the
 * last two groups possibly written as a dotted quad. Refuses a byte as soon as the
 * group count, a group's length or the separators rule out every completion.
 */
typedef struct Ipv6Scan {
        unsigned groups; /* ended by a ':' */
        unsigned digits; /* of the current group */
        unsigned colons; /* at the end of what was read: 0, 1 or 2 */
        bool compressed; /* "::" seen */
        bool octet;      /* the current group may still be the first number of a dotted quad */
        bool dotted;     /* it was: the rest is read by ipv4 */
        Ipv4Scan ipv4;
} Ipv6Scan;

static unsigned ipv6_groups_max(const Ipv6Scan *s) {
        return s->compressed ? 7 : 8;
}

static bool ipv6_scan_colon(Ipv6Scan *s) {
        if (s->digits > 0) {
                /* A group ends: another group, or "::", must follow. */
                s->groups++;
                s->digits = 0;
                s->colons = 1;
                return s->groups < ipv6_groups_max(s);
        }
        if (s->colons == 0) {
                s->colons = 1; /* the address starts with ':', which must be "::" */
                return true;
        }
        if (s->colons == 2 || s->compressed)
                return false; /* ":::" or a second "::" */
        s->compressed = true;
        s->colons = 2;
        return true;
}

static bool ipv6_scan(Ipv6Scan *s, char c) {
        if (s->dotted)
                return ipv4_scan(&s->ipv4, c);
        if (c == ':')
                return ipv6_scan_colon(s);
        if (s->colons == 1 && s->groups == 0)
                return false; /* a single leading ':' */
        if (c == '.') {
                /* The dotted quad takes two groups and ends the address. */
                if (s->digits == 0 || !s->octet || (s->compressed ? s->groups + 2 > 7 : s->groups != 6))
                        return false;
                s->dotted = true;
                return ipv4_scan(&s->ipv4, c);
        }
        if (!is_hex_digit(c))
                return false;
        if (s->digits == 0) {
                s->octet = true;
                s->ipv4 = (Ipv4Scan){ 0 };
        }
        s->octet = s->octet && is_digit(c) && ipv4_scan(&s->ipv4, c);
        s->colons = 0;
        return ++s->digits <= 4 && s->groups + 1 <= ipv6_groups_max(s);
}

static bool ipv6_scan_done(const Ipv6Scan *s) {
        if (s->dotted)
                return ipv4_scan_done(&s->ipv4);
        if (s->digits > 0)
                return s->compressed || s->groups + 1 == 8;
        return s->colons == 2; /* ends with "::" */
}

/* A port being read: decimal 0..65535, no leading zeros. */
typedef struct PortScan {
        unsigned digits;
        uint32_t value;
} PortScan;

static bool port_scan(PortScan *s, char c) {
        if (!is_digit(c) || (s->digits > 0 && s->value == 0))
                return false;
        s->value = s->value * 10 + (uint32_t)(c - '0');
        s->digits++;
        return s->value <= UINT16_MAX;
}

typedef enum V1Field {
        V1_KEYWORD, /* "PROXY " */
        V1_PROTOCOL,
        V1_UNKNOWN_REST,
        V1_SOURCE,
        V1_DESTINATION,
        V1_SOURCE_PORT,
        V1_DESTINATION_PORT,
        V1_LF,
} V1Field;

typedef struct V1Scan {
        V1Field field;
        size_t start; /* of the current field */
        int family;   /* AF_INET or AF_INET6 once TCP4 or TCP6 is read */
        union {
                Ipv4Scan ipv4;
                Ipv6Scan ipv6;
                PortScan port;
        } scan; /* of the current field */
        union {
                struct in_addr in;
                struct in6_addr in6;
        } source, destination;
        uint16_t source_port, destination_port;
} V1Scan;

static void v1_next(V1Scan *s, V1Field field, size_t start) {
        s->field = field;
        s->start = start;
        memset(&s->scan, 0, sizeof s->scan);
}

/* A byte of "TCP4", "TCP6" or "UNKNOWN", or the separator after it. */
static int v1_protocol(V1Scan *s, const char *line, size_t i) {
        static const char *const keywords[] = { "TCP4", "TCP6", "UNKNOWN" };
        const char *word = line + s->start;
        size_t n = i - s->start;
        char c = line[i];

        if (c == ' ' || c == '\r') {
                if (n == 4 && c == ' ' && memcmp(word, "TCP", 3) == 0) {
                        s->family = word[3] == '4' ? AF_INET : AF_INET6;
                        v1_next(s, V1_SOURCE, i + 1);
                        return 0;
                }
                if (n == 7 && memcmp(word, "UNKNOWN", 7) == 0) {
                        v1_next(s, c == ' ' ? V1_UNKNOWN_REST : V1_LF, i + 1);
                        return 0;
                }
                return -EBADMSG;
        }
        for (size_t k = 0; k < ELEMENTSOF(keywords); k++)
                if (strlen(keywords[k]) > n && strncmp(keywords[k], word, n) == 0 && keywords[k][n] == c)
                        return 0;
        return -EBADMSG;
}

/* An address byte, or the space that ends the address (then inet_pton() has the last word). */
static int v1_address(V1Scan *s, const char *line, size_t i) {
        char text[INET6_ADDRSTRLEN];
        size_t n = i - s->start;
        bool source = s->field == V1_SOURCE;
        void *dst = source ? (void *)&s->source : (void *)&s->destination;

        if (line[i] != ' ') {
                bool ok = s->family == AF_INET ? ipv4_scan(&s->scan.ipv4, line[i])
                                               : ipv6_scan(&s->scan.ipv6, line[i]);
                return ok ? 0 : -EBADMSG;
        }
        if (!(s->family == AF_INET ? ipv4_scan_done(&s->scan.ipv4) : ipv6_scan_done(&s->scan.ipv6)))
                return -EBADMSG;
        if (n >= sizeof text)
                return -EBADMSG;
        memcpy(text, line + s->start, n);
        text[n] = '\0';
        if (inet_pton(s->family, text, dst) != 1)
                return -EBADMSG;
        v1_next(s, source ? V1_DESTINATION : V1_SOURCE_PORT, i + 1);
        return 0;
}

/* A port byte, or the separator that ends the port: a space after the source, CR after the destination. */
static int v1_port(V1Scan *s, const char *line, size_t i) {
        bool source = s->field == V1_SOURCE_PORT;

        if (line[i] != (source ? ' ' : '\r'))
                return port_scan(&s->scan.port, line[i]) ? 0 : -EBADMSG;
        if (s->scan.port.digits == 0)
                return -EBADMSG;
        if (source)
                s->source_port = (uint16_t)s->scan.port.value;
        else
                s->destination_port = (uint16_t)s->scan.port.value;
        v1_next(s, source ? V1_DESTINATION_PORT : V1_LF, i + 1);
        return 0;
}

/* One byte of the line: 0 to go on, the line's length once its LF is read, or -EBADMSG. */
static int v1_byte(V1Scan *s, const char *line, size_t i) {
        switch (s->field) {
        case V1_KEYWORD:
                if (line[i] != "PROXY "[i])
                        return -EBADMSG;
                if (i == 5)
                        v1_next(s, V1_PROTOCOL, i + 1);
                return 0;
        case V1_PROTOCOL:
                return v1_protocol(s, line, i);
        case V1_UNKNOWN_REST:
                if (line[i] == '\n')
                        return -EBADMSG;
                if (line[i] == '\r')
                        v1_next(s, V1_LF, i + 1);
                return 0;
        case V1_SOURCE:
        case V1_DESTINATION:
                return v1_address(s, line, i);
        case V1_SOURCE_PORT:
        case V1_DESTINATION_PORT:
                return v1_port(s, line, i);
        case V1_LF:
                return line[i] == '\n' ? (int)(i + 1) : -EBADMSG;
        }
        return -EBADMSG;
}

static void set_inet(struct sockaddr_storage *ss, socklen_t *ret_len, int family, const void *addr,
                     uint16_t port_be) {
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *)ss;

                in->sin_family = AF_INET;
                in->sin_port = port_be;
                memcpy(&in->sin_addr, addr, sizeof in->sin_addr);
                *ret_len = sizeof *in;
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

                in6->sin6_family = AF_INET6;
                in6->sin6_port = port_be;
                memcpy(&in6->sin6_addr, addr, sizeof in6->sin6_addr);
                *ret_len = sizeof *in6;
        }
}

static int parse_v1(const char *line, size_t len, ProxyHeader *h) {
        V1Scan s = { .field = V1_KEYWORD };
        int r = 0;

        for (size_t i = 0; i < len && r == 0; i++) {
                r = v1_byte(&s, line, i);
                /* The CR must come by the 106th byte for the line to fit in PROXY_V1_MAX. */
                if (r == 0 && i + 1 >= PROXY_V1_MAX - 1 && s.field != V1_LF)
                        r = -E2BIG;
        }
        if (r <= 0)
                return r;

        *h = (ProxyHeader){ .version = 1, .length = (size_t)r };
        if (s.family == 0) {
                h->command = PROXY_COMMAND_LOCAL; /* UNKNOWN */
                return r;
        }
        h->command = PROXY_COMMAND_PROXY;
        h->has_addresses = true;
        set_inet(&h->source, &h->source_len, s.family, &s.source, htons(s.source_port));
        set_inet(&h->destination, &h->destination_len, s.family, &s.destination, htons(s.destination_port));
        return r;
}

/* Bytes of the family's addresses (and ports) in a v2 PROXY block, or -1 if refused. */
static int v2_address_size(uint8_t family) {
        switch (family) {
        case V2_UNSPEC:
                return 0;
        case V2_TCP4:
                return 2 * 4 + 2 * 2;
        case V2_TCP6:
                return 2 * 16 + 2 * 2;
        case V2_UNIX_STREAM:
                return 2 * UNIX_NAME_LEN;
        default:
                return -1;
        }
}

/* The TLVs in [start, end): 1 when they divide it exactly, 0 when the bytes below len
 * cannot tell yet, -EBADMSG when one does not fit. */
static int v2_check_tlvs(const uint8_t *p, size_t len, size_t start, size_t end) {
        for (size_t at = start; at < end;) {
                size_t value_len;

                if (end - at < 3)
                        return -EBADMSG; /* room left for less than a TLV's type and length */
                if (at + 3 > len)
                        return 0;
                value_len = (size_t)p[at + 1] << 8 | p[at + 2];
                if (value_len > end - at - 3)
                        return -EBADMSG;
                at += 3 + value_len;
        }
        return 1;
}

static void set_unix(struct sockaddr_storage *ss, socklen_t *ret_len, const uint8_t name[UNIX_NAME_LEN]) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        size_t n;

        un->sun_family = AF_UNIX;
        if (name[0] != '\0') {
                /* A path: up to its NUL, which the kernel counts too when there is room for it. */
                n = strnlen((const char *)name, UNIX_NAME_LEN);
                memcpy(un->sun_path, name, n);
                n += n < UNIX_NAME_LEN;
        } else {
                /* Abstract: trailing NULs are padding; none left is an unnamed socket. */
                for (n = UNIX_NAME_LEN; n > 1 && name[n - 1] == '\0'; n--)
                        ;
                if (n == 1)
                        n = 0;
                memcpy(un->sun_path, name, n);
        }
        *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* Two bytes in network order, kept in network order. */
static uint16_t port_at(const uint8_t *p) {
        uint16_t port;

        memcpy(&port, p, sizeof port);
        return port;
}

static void v2_addresses(ProxyHeader *h, uint8_t family, const uint8_t *a) {
        h->has_addresses = true;
        switch (family) {
        case V2_TCP4:
                set_inet(&h->source, &h->source_len, AF_INET, a, port_at(a + 8));
                set_inet(&h->destination, &h->destination_len, AF_INET, a + 4, port_at(a + 10));
                break;
        case V2_TCP6:
                set_inet(&h->source, &h->source_len, AF_INET6, a, port_at(a + 32));
                set_inet(&h->destination, &h->destination_len, AF_INET6, a + 16, port_at(a + 34));
                break;
        case V2_UNIX_STREAM:
                set_unix(&h->source, &h->source_len, a);
                set_unix(&h->destination, &h->destination_len, a + UNIX_NAME_LEN);
                break;
        default:
                h->has_addresses = false;
        }
}

/* Checks in the order of the bytes they read, so each is decided by the first prefix that holds them. */
static int parse_v2(const uint8_t *p, size_t len, ProxyHeader *h) {
        ProxyCommand command;
        size_t total;
        int address_size = 0, r;

        if (memcmp(p, V2_SIGNATURE, MIN(len, (size_t)V2_SIGNATURE_LEN)) != 0)
                return -EBADMSG;
        if (len <= 12)
                return 0;
        if ((p[12] >> 4) != 2 || (p[12] & 0xf) > 1)
                return -EBADMSG; /* version, command */
        command = (p[12] & 0xf) == 1 ? PROXY_COMMAND_PROXY : PROXY_COMMAND_LOCAL;
        if (len <= 13)
                return 0;
        if (command == PROXY_COMMAND_PROXY) {
                address_size = v2_address_size(p[13]);
                if (address_size < 0)
                        return -EBADMSG;
        }
        if (len < PROXY_V2_PREFIX)
                return 0;
        total = PROXY_V2_PREFIX + ((size_t)p[14] << 8 | p[15]);
        if (total > PROXY_HEADER_MAX)
                return -E2BIG;
        if (total < PROXY_V2_PREFIX + (size_t)address_size)
                return -EBADMSG;
        if (address_size > 0) {
                r = v2_check_tlvs(p, len, PROXY_V2_PREFIX + (size_t)address_size, total);
                if (r <= 0)
                        return r;
        }
        if (len < total)
                return 0;

        *h = (ProxyHeader){ .version = 2, .command = command, .length = total };
        if (command == PROXY_COMMAND_PROXY)
                v2_addresses(h, p[13], p + PROXY_V2_PREFIX);
        return (int)total;
}

int proxy_header_parse(const void *buf, size_t len, ProxyHeader *ret) {
        const uint8_t *p = buf;
        ProxyHeader h;
        int r;

        if (len == 0)
                return 0;
        if (p[0] == 'P')
                r = parse_v1(buf, len, &h);
        else if (p[0] == '\r')
                r = parse_v2(p, len, &h);
        else
                return -EBADMSG;
        if (r > 0 && ret)
                *ret = h;
        return r;
}
