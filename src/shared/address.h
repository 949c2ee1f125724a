/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Listen addresses as written by users: [MODE@]ADDRESS, where ADDRESS is
 *   HOST:PORT     IPv4 literal or host name (resolved when binding)
 *   [V6]:PORT     IPv6 literal, IPv6 only
 *   :PORT, PORT   every address, dual-stack ([::] with IPv4 mapped, or 0.0.0.0)
 *   unix:PATH     AF_UNIX stream socket; unix:@NAME for the abstract namespace
 * Parsing is pure (no name resolution) so it can be unit-tested and fuzzed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol.h"

#define ADDRESS_HOST_MAX 255
#define ADDRESS_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Room for any formatted address, mode prefix included. */
#define ADDRESS_STRING_MAX (16 + ADDRESS_HOST_MAX + 16)

typedef enum AddressKind {
        ADDRESS_ANY,    /* :PORT */
        ADDRESS_INET,   /* HOST:PORT or [V6]:PORT */
        ADDRESS_UNIX,   /* unix:PATH */
} AddressKind;

typedef struct ListenAddress {
        ProtocolMode mode;
        AddressKind kind;
        bool ipv6;                              /* ADDRESS_INET written in brackets */
        uint16_t port;
        char host[ADDRESS_HOST_MAX + 1];        /* ADDRESS_INET, without brackets */
        char path[ADDRESS_PATH_MAX + 1];        /* ADDRESS_UNIX; '@' starts an abstract name */
} ListenAddress;

/* Returns 0, or -EINVAL with *ret_reason (if given) a short static explanation. */
int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason);

/* Canonical form, parseable again: "line@[::1]:9998", "oneshot@:9999", "oneshot@unix:/run/x". */
const char *listen_address_format(const ListenAddress *a, char *buf, size_t size);

bool listen_address_equal(const ListenAddress *a, const ListenAddress *b);

/* "127.0.0.1:40522", "[::1]:9999" (IPv4-mapped IPv6 shown as IPv4), "unix:/path", "unix:@name",
 * "unix" for an unnamed peer. */
const char *sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* The inverse of sockaddr_format() for what it prints for IPv4, IPv6 and AF_UNIX: only a
 * string that sockaddr_format() prints exactly so for the result is taken, so that one
 * address has one spelling ("[::ffff:1.2.3.4]:1", shown as IPv4, a port "01" and "unknown"
 * are refused). The result is zero-filled beyond *ret_len. Returns 0, or -EINVAL. */
int sockaddr_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);

/* Fills a sockaddr_un from a path as written after "unix:". Returns the length to pass to bind(). */
int sockaddr_un_set(struct sockaddr_un *sun, const char *path, socklen_t *ret_len);
