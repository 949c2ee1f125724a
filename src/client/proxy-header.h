/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PROXY protocol header ackc sends first on a connection (--proxy), built with
 * the shared builders (proxy-protocol.h). The source is --proxy-source, or else the
 * connection's own local address; the destination is the address it connected to,
 * its real peer. A v1 header cannot carry AF_UNIX addresses: over --unix it is
 * "PROXY UNKNOWN". --proxy local is a v2 LOCAL, with no addresses.
 */

#include <sys/socket.h>

#include "args.h"
#include "proxy-protocol.h"

/* Room for any header ackc builds: a v2 header with two AF_UNIX names is the longest. */
#define CLIENT_PROXY_HEADER_MAX (PROXY_V2_PREFIX + 2 * 108)

/*
 * The header for socket fd (connected, or with its connect() under way: the local
 * address is bound by then) to peer, in buf (CLIENT_PROXY_HEADER_MAX bytes). Returns
 * its length, 0 if a->proxy is PROXY_NONE, or a negative errno.
 */
int client_proxy_header(const ClientArgs *a, int fd, const Source *peer, char *buf, size_t size);

/* Whether every connection gets the same header (no local address to read): then it is
 * built once, with fd -1. */
bool client_proxy_header_is_fixed(const ClientArgs *a, const Source *peer);
