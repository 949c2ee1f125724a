/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * C escapes in --message and --expect, so a payload or a reply can hold bytes a
 * shell argument cannot easily carry: \r\n for Redis, \0, \xff. Recognised:
 * \\ \" \' \a \b \e \f \n \r \t \v, \xH or \xHH (hex), \O to \OOO (octal).
 * Any other byte after a backslash, or a backslash at the end, is an error, so
 * a typo never silently becomes a different payload.
 */

#include <stddef.h>

/* Decodes s into a new buffer (NUL-terminated, but it may also contain NULs).
 * Returns 0 with *ret (free() it) and *ret_len, -EINVAL with *ret_reason, or -ENOMEM. */
int unescape(const char *s, char **ret, size_t *ret_len, const char **ret_reason);
