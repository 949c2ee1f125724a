/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>

#include "macro.h"
#include "proxy-header.h"

bool client_proxy_header_is_fixed(const ClientArgs *a, const Source *peer) {
        return a->proxy == PROXY_LOCAL || a->proxy_source.len > 0 ||
               (a->proxy == PROXY_V1 && peer->addr.ss_family == AF_UNIX);
}

int client_proxy_header(const ClientArgs *a, int fd, const Source *peer, char *buf, size_t size) {
        const struct sockaddr *dst = (const struct sockaddr *)&peer->addr;
        struct sockaddr_storage local;
        const struct sockaddr *src = (const struct sockaddr *)&local;
        socklen_t src_len = sizeof local;

        switch (a->proxy) {
        case PROXY_NONE:
                return 0;
        case PROXY_LOCAL:
                return proxy_header_format_v2(buf, size, PROXY_COMMAND_LOCAL, NULL, 0, NULL, 0);
        case PROXY_V1:
                if (peer->addr.ss_family == AF_UNIX)
                        return proxy_header_format_v1(buf, size, NULL, 0, NULL, 0);
                break;
        case PROXY_V2:
                break;
        }

        if (a->proxy_source.len > 0) {
                src = (const struct sockaddr *)&a->proxy_source.addr;
                src_len = a->proxy_source.len;
        } else if (getsockname(fd, (struct sockaddr *)&local, &src_len) < 0)
                return negative_errno();

        if (a->proxy == PROXY_V1)
                return proxy_header_format_v1(buf, size, src, src_len, dst, peer->len);
        return proxy_header_format_v2(buf, size, PROXY_COMMAND_PROXY, src, src_len, dst, peer->len);
}
