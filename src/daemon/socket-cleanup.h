/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ackd promises to remove the socket files it created when it exits. With
 * --user it cannot do that itself when a file sits in a directory the user may
 * not write (a root-owned /run/ackd, say): by then it has dropped root. So,
 * only in that case, a helper is forked while ackd is still root. It keeps root,
 * holds nothing but the read end of a pipe whose write end only ackd holds, and
 * ignores SIGTERM, SIGINT and SIGHUP, so that a Ctrl-C or a stop of the whole
 * process group does not end it first. When ackd exits, however it exits, the
 * pipe reaches EOF: the helper removes exactly those files, each only if it is
 * still the socket ackd created, and exits.
 *
 * Simpler ways do not keep the promise: write access to a directory cannot be
 * kept as a descriptor (unlinkat() checks the caller's rights), and keeping a
 * capability or changing the directory's owner would give the user more than
 * ackd needs to serve.
 */

#include "listener.h"

/* Before privileges_drop(): starts the helper if user is set, ackd is root, and a
 * socket file in set could not be removed as user; it then owns those files and
 * set's listeners no longer do. Never fails: without the helper (fork() failed),
 * the files stay ackd's, and whatever it cannot remove at exit is logged. */
void socket_cleanup_start(ListenerSet *set, const char *user);
