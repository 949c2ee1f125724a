/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Restart without dropping a connection (ackd(8), RESTART AND UPGRADE). On a
 * restart, and only then (ackd.service's RestartKillSignal=SIGUSR2), ackd stops
 * reading, writes what it can of what it owes, describes every established
 * connection in a sealed memfd (handover-state.h) and passes it to systemd's
 * file descriptor store (FDSTORE=1), with the connections' sockets in carriers:
 * datagram sockets holding them in flight, CARRIER_FDS_MAX each (handover.c says
 * why not the sockets themselves). It waits for sd_notify_barrier() and exits.
 * The next ackd finds them among LISTEN_FDNAMES, takes the sockets out of the
 * carriers, matches each record to its socket by inode, resumes each connection
 * in a worker, and removes them from the store (FDSTOREREMOVE=1).
 *
 * The store holds at most $FDSTORE fds (FileDescriptorStoreMax=; systemd 254
 * sets $FDSTORE, ackd.service sets it for older versions): the state and
 * $FDSTORE - 1 carriers. Connections beyond what they hold are drained as on a
 * stop. Without a store, a restart drains.
 */

#include "server-internal.h"

/* LISTEN_FDNAMES of what one ackd leaves for the next. */
#define HANDOVER_FDNAME_STATE       "ackd-handover"
#define HANDOVER_FDNAME_CONNECTIONS "ackd-connections"
/* A socket stored on its own, as ackd stored them before carriers: still taken, so that
 * the first restart onto this version keeps the connections too. */
#define HANDOVER_FDNAME_CONNECTION "ackd-connection"

/* How many connections a restart can hand over: what the store's carriers hold. */
uint64_t handover_capacity(void);

/* Whether a restart can hand over, and if not, why (for the log). */
bool handover_possible(const Server *s, const char **ret_why);

/* After every worker exported what it could (Worker.exported): sends the state and the
 * sockets to the store and waits for it. Connections it fails to send are closed. */
int handover_give(Server *s);

/* Before the workers start: reads what the previous ackd left (ListenerSet.handover_*),
 * gives each worker the connections it is to resume, and empties the store. Anything
 * that cannot be restored is closed, counted and logged; this never fails ackd. */
void handover_take(Server *s);

/* After the workers started: what handover_take() had to keep until then. */
void handover_take_done(Server *s);
