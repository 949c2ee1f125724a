/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Listen addresses as written by users: [MODE[+proxy]@]ADDRESS. MODE is oneshot (the
 * default), line or metrics; +proxy (oneshot or line) means every connection starts
 * with a PROXY protocol header, and "+proxy@ADDRESS" alone means oneshot+proxy.
 * ADDRESS is
 *   HOST:PORT     IPv4 literal or host name (resolved when binding)
 *   [V6]:PORT     IPv6 literal, IPv6 only; a link-local one needs a scope,
 *                 [fe80::1%IFNAME]:PORT or [fe80::1%INDEX]:PORT
 *   :PORT, PORT   every address, dual-stack ([::] with IPv4 mapped, or 0.0.0.0)
 *   unix:PATH     AF_UNIX stream socket; unix:@NAME for the abstract namespace
 * Parsing is pure (no name resolution) so it can be unit-tested and fuzzed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol.h"

#define ADDRESS_HOST_MAX  255
#define ADDRESS_PATH_MAX  (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define ADDRESS_SCOPE_MAX 15 /* IF_NAMESIZE - 1: an interface name, or an index */

/* Room for any formatted address, mode prefix included. */
#define ADDRESS_STRING_MAX (16 + ADDRESS_HOST_MAX + 16)

typedef enum AddressKind {
        ADDRESS_ANY,  /* :PORT */
        ADDRESS_INET, /* HOST:PORT or [V6]:PORT */
        ADDRESS_UNIX, /* unix:PATH */
} AddressKind;

typedef struct ListenAddress {
        ProtocolMode mode;
        bool proxy; /* +proxy: a PROXY protocol header comes first */
        AddressKind kind;
        bool ipv6; /* ADDRESS_INET written in brackets */
        uint16_t port;
        char host[ADDRESS_HOST_MAX + 1];   /* ADDRESS_INET, without brackets or scope */
        char scope[ADDRESS_SCOPE_MAX + 1]; /* ipv6: "eth0" or "2" for fe80::1%eth0; else empty */
        char path[ADDRESS_PATH_MAX + 1];   /* ADDRESS_UNIX; '@' starts an abstract name */
} ListenAddress;

/* Returns 0, or -EINVAL with *ret_reason (if given) a short static explanation. */
int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason);

/* A listener mode, the n bytes at s: "oneshot", "line", "metrics", "oneshot+proxy",
 * "line+proxy", or "+proxy" (oneshot). Returns 0, or -EINVAL. (The part of a listen
 * address before '@', and systemd's FileDescriptorName=.) */
int listen_mode_parse(const char *s, size_t n, ProtocolMode *ret_mode, bool *ret_proxy);

/* "oneshot", "line+proxy", "metrics": what listen_mode_parse() reads back. */
const char *listen_mode_format(ProtocolMode mode, bool proxy, char *buf, size_t size);
#define LISTEN_MODE_STRING_MAX 16

/* Canonical form, parseable again: "line@[::1]:9998", "oneshot@:9999", "oneshot@unix:/run/x",
 * "oneshot+proxy@[fe80::1%eth0]:9999". */
const char *listen_address_format(const ListenAddress *a, char *buf, size_t size);

bool listen_address_equal(const ListenAddress *a, const ListenAddress *b);

/* "127.0.0.1:40522", "[::1]:9999" (IPv4-mapped IPv6 shown as IPv4), "unix:/path", "unix:@name",
 * "unix" for an unnamed peer. */
const char *sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* The same, for an address a socket was bound to, as the user named it: an IPv4-mapped IPv6
 * address stays IPv6 ("[::ffff:127.0.0.1]:9999"), and a link-local one shows its scope,
 * scope if given (an interface name), else sin6_scope_id ("[fe80::1%eth0]:9999"). */
const char *sockaddr_format_local(const struct sockaddr *sa, socklen_t len, const char *scope, char *buf,
                                  size_t size);

/* An address prefix, "10.0.0.0/8", "2001:db8::/32", or one address ("192.0.2.7", "::1"). */
typedef struct AddressPrefix {
        int family;       /* AF_INET or AF_INET6 */
        uint8_t bits;     /* prefix length: 0..32 or 0..128 */
        uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
} AddressPrefix;

#define ADDRESS_PREFIX_STRING_MAX (INET6_ADDRSTRLEN + 4)

/* Strict: the host bits must be zero ("10.1.2.3/8" is refused: it is either a typo or
 * means 10.0.0.0/8). Returns 0, or -EINVAL with *ret_reason (if given) why. */
int address_prefix_parse(const char *s, AddressPrefix *ret, const char **ret_reason);

/* "10.0.0.0/8", "::1/128". */
const char *address_prefix_format(const AddressPrefix *p, char *buf, size_t size);

/* Whether sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as IPv4) lies in p. */
bool address_prefix_match(const AddressPrefix *p, const struct sockaddr *sa, socklen_t len);

/* The inverse of sockaddr_format() for what it prints for IPv4, IPv6 and AF_UNIX: only a
 * string that sockaddr_format() prints exactly so for the result is taken, so that one
 * address has one spelling ("[::ffff:1.2.3.4]:1", shown as IPv4, a port "01" and "unknown"
 * are refused). The result is zero-filled beyond *ret_len. Returns 0, or -EINVAL. */
int sockaddr_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);

/* Fills a sockaddr_un from a path as written after "unix:". Returns the length to pass to bind(). */
int sockaddr_un_set(struct sockaddr_un *sun, const char *path, socklen_t *ret_len);
