/* SPDX-License-Identifier: MIT */
#pragma once

/* What the PROXY protocol parser (proxy-protocol.c) and the header builders
 * (proxy-protocol-format.c) share: the v2 wire constants. */

#include <assert.h>
#include <stdint.h>
#include <sys/un.h>

#include "proxy-protocol.h"

#define V2_SIGNATURE     "\r\n\r\n\0\r\nQUIT\n"
#define V2_SIGNATURE_LEN 12
#define UNIX_NAME_LEN    108 /* a v2 UNIX address, and Linux's sun_path */

static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == UNIX_NAME_LEN, "sun_path is not 108 bytes");
static_assert(PROXY_HEADER_MAX <= INT32_MAX, "header lengths are returned as int");

/* v2 family and transport bytes. */
enum {
        V2_UNSPEC = 0x00,
        V2_TCP4 = 0x11,
        V2_TCP6 = 0x21,
        V2_UNIX_STREAM = 0x31,
};
