/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Root is needed at most to bind (a port below 1024, a socket in /run): ackd
 * refuses to serve as root unless told to (--allow-root), and with --user it
 * drops to that user, its primary group only, and no capabilities at all
 * (bounding set included, no_new_privs set) before the first connection.
 * Under systemd none of this applies: the units use DynamicUser=.
 */

#include <stdbool.h>
#include <sys/types.h>

/* Before binding: may this process go on, as who it is, with these settings?
 * Returns 0, or -EPERM after printing a usage error. */
int privileges_check(const char *user, bool allow_root);

/* After binding, before any worker starts. No-op without a user. */
int privileges_drop(const char *user);

/* The uid and primary gid of a user name: 0, -ESRCH if there is none, or another error. */
int privileges_lookup_user(const char *user, uid_t *ret_uid, gid_t *ret_gid);
