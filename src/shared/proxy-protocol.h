/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt), as
 * a pure function of the bytes a client sent first: no I/O, no allocation, no
 * state kept between calls. A caller that has read more calls again with the
 * whole of what it holds; the verdict never changes as bytes are added: a
 * prefix that is rejected stays rejected (with the same error), and a header
 * is accepted exactly when its last byte arrives.
 *
 * Decided as early as the bytes allow: the first byte must be 'P' (v1) or CR
 * (v2), so "GET /", "Hello" or a TLS ClientHello are refused on their first
 * byte; a v1 line on the first byte that no valid line could have there, a v2
 * header on the first bad signature, version, command, family or length byte.
 *
 * Version 1, accepted: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP
 * dport CRLF, or "PROXY" SP "UNKNOWN" then anything up to the CRLF.
 *   - Exactly one space between fields, none before the CRLF, keywords in
 *     upper case, as the specification spells them.
 *   - TCP4 addresses: a dotted quad of four decimal numbers 0..255 without
 *     leading zeros (the specification forbids them, they could be octal).
 *   - TCP6 addresses: what inet_pton(AF_INET6) accepts (hex groups of 1 to 4
 *     digits in either case, one "::", a dotted IPv4 tail as in
 *     "::ffff:192.0.2.1", which senders use for IPv4-mapped clients). No zone
 *     ("%eth0"), no brackets.
 *   - The family must match: an IPv6 address under TCP4 or an IPv4 one under
 *     TCP6 is refused.
 *   - Ports: decimal 0..65535 without leading zeros or sign ("0" itself is in
 *     the specification's range, and a v2 header can carry it too).
 *   - The line ends at the first CR, which must be followed by LF: a lone CR
 *     or LF is refused, as the specification says. After UNKNOWN any other
 *     byte is ignored up to the CRLF, as the specification says.
 *   - At most PROXY_V1_MAX (107) bytes with the CRLF: a line still without
 *     its CR at the 106th byte gets -E2BIG.
 *
 * Version 2, accepted: the 12-byte signature, version 2, then
 *   - LOCAL (a health check from the proxy itself): the family byte and the
 *     whole block after the 16-byte prefix are skipped, whatever they hold, as
 *     the specification requires ("discard the protocol block including the
 *     family").
 *   - PROXY with family 0x11 (TCP over IPv4), 0x21 (TCP over IPv6) or 0x31
 *     (UNIX stream): the block must hold the family's addresses (12, 36 or 216
 *     bytes); what follows them, up to the block's end, must be well-formed
 *     TLVs (each with its 3-byte type and length and its whole value inside
 *     the block), which are skipped: a TLV area that does not divide exactly
 *     into TLVs means the sender is broken or the header is corrupt, and the
 *     specification asks to drop anything that does not match the protocol.
 *     TLVs are not interpreted (ackd has no use for them; CRC32C is not
 *     checked, which the specification allows a receiver that does not
 *     support it).
 *   - PROXY with family 0x00 (UNSPEC): the connection's own addresses are
 *     used and the block is skipped unread (the specification says to ignore
 *     it, and does not say where its addresses would end).
 *   - Refused: any other version or command; under PROXY, the datagram
 *     families 0x12, 0x22, 0x32 (ackd serves streams, and a header that says
 *     the client's connection was UDP does not describe a TCP one) and every
 *     byte the specification does not list; a block shorter than the family's
 *     addresses; a header longer than PROXY_HEADER_MAX (-E2BIG, decided as
 *     soon as the length field is read).
 *   - UNIX addresses: a name that starts with a NUL is abstract and has its
 *     trailing NULs removed (the 108 bytes on the wire do not carry a length);
 *     an all-NUL name is an unnamed socket; a path ends at its first NUL.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* ackd's bound on a whole header, v2's 16-byte prefix included. */
#define PROXY_HEADER_MAX 4096
/* The specification's bound on a v1 line, CRLF included. */
#define PROXY_V1_MAX 107
/* The fixed part of a v2 header: signature, version and command, family, length. */
#define PROXY_V2_PREFIX 16

typedef enum ProxyCommand {
        PROXY_COMMAND_LOCAL, /* v2 LOCAL, v1 UNKNOWN: use the connection's own addresses */
        PROXY_COMMAND_PROXY,
} ProxyCommand;

typedef struct ProxyHeader {
        unsigned version;     /* 1 or 2 */
        ProxyCommand command; /* v1 UNKNOWN and v2 LOCAL: PROXY_COMMAND_LOCAL */
        bool has_addresses;   /* false for LOCAL, v1 UNKNOWN, v2 UNSPEC: use the connection's own */
        /* sockaddr_in, sockaddr_in6 (ports in network order) or sockaddr_un, the bytes
         * beyond *_len zeroed; printable with sockaddr_format(). */
        struct sockaddr_storage source, destination;
        socklen_t source_len, destination_len;
        size_t length; /* bytes the header takes, TLVs included: the client's data follows */
} ProxyHeader;

/*
 * buf holds the first len bytes a client sent. Returns the header's length (> 0) when
 * buf starts with a complete valid header (the bytes after it are the client's data), 0
 * when buf is a proper prefix of what could still become a valid header (wait for more),
 * -EBADMSG when it cannot become one, -E2BIG when it would exceed PROXY_HEADER_MAX (v2)
 * or PROXY_V1_MAX (v1). Never reads beyond len. *ret (may be NULL) is written only when
 * the return value is > 0. Never 0 once len reaches PROXY_HEADER_MAX (PROXY_V1_MAX for a
 * buffer starting with 'P'): a caller holding that many bytes has its verdict.
 */
int proxy_header_parse(const void *buf, size_t len, ProxyHeader *ret);

/*
 * For ackc: build a header for a connection from src to dst. Both take the sockaddr
 * lengths, as AF_UNIX names are delimited by theirs. An AF_INET address paired with an
 * AF_INET6 one is sent as IPv4-mapped IPv6 (TCP6, family 0x21).
 *
 * v1: TCP4 or TCP6; src or dst NULL: "PROXY UNKNOWN\r\n" (what a v1 sender must send for
 * a UNIX connection). Writes a NUL-terminated line and returns its length without the NUL.
 * v2: LOCAL ignores the addresses; PROXY with src or dst NULL sends UNSPEC; otherwise
 * TCP over IPv4, TCP over IPv6 or UNIX stream, with no TLVs.
 *
 * Returns the header's length, -ENOBUFS if size is too small, -EAFNOSUPPORT for a family
 * (or pair) the version cannot carry (AF_UNIX in v1), -EINVAL for an address shorter
 * than its family's sockaddr.
 */
int proxy_header_format_v1(char *buf, size_t size, const struct sockaddr *src, socklen_t src_len,
                           const struct sockaddr *dst, socklen_t dst_len);
int proxy_header_format_v2(void *buf, size_t size, ProxyCommand command, const struct sockaddr *src,
                           socklen_t src_len, const struct sockaddr *dst, socklen_t dst_len);
