/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "macro.h"
#include "protocol.h"

static const char *const keys[_ERROR_KIND_MAX] = {
#define ERROR_KIND_KEY(id, k) [ERROR_##id] = k,
        ERROR_KINDS(ERROR_KIND_KEY)
#undef ERROR_KIND_KEY
};

const char *error_kind_key(ErrorKind k) {
        return k < _ERROR_KIND_MAX ? keys[k] : NULL;
}

ErrorKind error_kind_from_errno(int error) {
        switch (abs(error)) {
        case ECONNREFUSED:
        case ENOENT: /* a unix socket path nobody listens on */
                return ERROR_REFUSED;
        case ECONNRESET:
        case ECONNABORTED:
        case EPIPE:
                return ERROR_RESET;
        case ETIMEDOUT:
                return ERROR_TIMEOUT;
        default:
                return ERROR_OTHER;
        }
}

ErrorKind error_kind_from_reply(const void *data, size_t len) {
        /* Without its newline: the rest may not have arrived yet. */
        const size_t busy = STRLEN(REPLY_ERR_BUSY) - 1;

        if (len >= busy && memcmp(data, REPLY_ERR_BUSY, busy) == 0)
                return ERROR_BUSY;
        if (len >= 4 && memcmp(data, "ERR ", 4) == 0)
                return ERROR_ERR;
        return ERROR_WRONG_REPLY;
}
