/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Sealing a listener before it is closed at a stop. Closing a listening socket resets
 * every connection the kernel completed into its queue and every handshake under way;
 * sealed first, it lets no new connection in while those already queued can still be
 * accepted and served, so that the close resets nothing.
 *
 * TCP: a socket filter drops every SYN that is not also an ACK. New clients see no
 * answer and retransmit (after about a second), and by then the port is closed: the
 * retransmission is refused, a connect() failure that clients and load balancers
 * retry. The ACK or the first data of a handshake already under way still passes
 * (a filter that drops everything would strand those that TCP_DEFER_ACCEPT holds), and
 * so does everything on established connections, which inherit the filter.
 * AF_UNIX: shutdown(SHUT_RD) on the listener, which makes connect() fail with
 * ECONNREFUSED at once; what is queued can still be accepted.
 *
 * Only for sockets ackd bound itself: a socket from systemd is never touched, so that
 * its queue waits for the next instance.
 */

#include "listener.h"

/* Returns 0, or a negative errno (the listener is then as it was). */
int listener_seal(const Listener *l);
