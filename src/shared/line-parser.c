/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "line-parser.h"

size_t line_parser_feed(LineParser *p, const char *buf, size_t len, size_t max_message, line_message_fn fn,
                        void *userdata, bool *ret_too_long) {
        const char *s = buf, *end = buf + len;
        size_t n = 0;

        *ret_too_long = false;

        while (s < end) {
                const char *lf = memchr(s, '\n', (size_t)(end - s));
                size_t seg, total;
                bool cr;

                if (!lf) {
                        /* Unterminated tail: remember its length only. A trailing CR may
                         * yet turn out to end the message, so it does not count yet. */
                        uint64_t partial = (uint64_t)p->partial + (uint64_t)(end - s);

                        cr = end[-1] == '\r';
                        if (partial - cr > max_message) {
                                *ret_too_long = true;
                                return n;
                        }
                        p->partial = (uint32_t)partial;
                        p->cr = cr;
                        break;
                }

                seg = (size_t)(lf - s);
                cr = seg > 0 ? lf[-1] == '\r' : p->cr;
                total = p->partial + seg - cr;
                if (total > max_message) {
                        *ret_too_long = true;
                        return n;
                }

                if (fn) {
                        LineMessage m = {
                                .data = s,
                                .len = seg > 0 ? seg - cr : 0,
                                .total = total,
                        };
                        fn(&m, userdata);
                }

                n++;
                p->partial = 0;
                p->cr = false;
                s = lf + 1;
        }

        return n;
}

bool line_parser_finish(LineParser *p, size_t *ret_total) {
        bool pending = p->partial > 0;

        if (ret_total)
                *ret_total = pending ? p->partial - p->cr : 0;
        *p = (LineParser){ 0 };
        return pending;
}
