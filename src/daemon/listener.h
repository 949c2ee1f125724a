/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Listening sockets: either passed by systemd (socket activation, with the
 * protocol mode in FileDescriptorName=) or bound by ackd itself with
 * SO_REUSEADDR, so a restart binds at once even with connections in TIME_WAIT.
 * An inherited listener is never shut down or unlinked: connections queued on
 * it wait for the next instance. With Accept=yes, systemd passes a single
 * connected socket instead ("inetd mode"): ackd serves that one connection and
 * exits.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "address.h"
#include "settings.h"

/* Connection.listener is one byte. */
#define LISTENERS_MAX 255

typedef struct Listener {
        int fd;
        uint8_t index; /* in its ListenerSet */
        ProtocolMode mode;
        bool proxy; /* +proxy: each connection starts with a PROXY protocol header */
        int family;
        bool activated;                /* passed in by systemd */
        bool defer_accept;             /* TCP_DEFER_ACCEPT: accept() returns with data waiting */
        bool connected;                /* not a listener: the connection of an Accept=yes instance */
        char name[ADDRESS_STRING_MAX]; /* the bound address, e.g. "[::]:9999" */
        char *unlink_path;             /* a socket file we created and remove on exit */
        dev_t unlink_dev;              /* ... which is the file with this identity */
        ino_t unlink_ino;
} Listener;

typedef struct ListenerSet {
        Listener *items;
        size_t n_items;
        bool activated;
        bool inetd; /* one connected socket (Accept=yes): serve it, then exit */
        /* Restart handover: what the previous ackd left in systemd's fd store (handover.h),
         * passed among the listeners, told apart by their names. */
        int handover_state_fd;  /* -1: none */
        int *handover_carriers; /* sockets holding the connections' sockets */
        size_t n_handover_carriers;
        int *handover_sockets; /* connections' sockets stored on their own */
        size_t n_handover_sockets;
} ListenerSet;

/* "line+proxy", "metrics": the mode as listen_mode_parse() reads it. */
static inline const char *listener_mode(const Listener *l, char *buf, size_t size) {
        return listen_mode_format(l->mode, l->proxy, buf, size);
}

/* Takes the sockets systemd passed (LISTEN_FDS), or binds the settings' addresses.
 * Logs what it listens on; logs and returns a negative errno on failure. */
int listener_set_open(ListenerSet *set, const Settings *s);

/* Closes the ack listeners ackd bound itself (not those from systemd, nor the metrics
 * listeners, which answer until the end); removes their socket files. */
void listener_set_close_bound(ListenerSet *set);

/* Closes every listener; removes socket files ackd created. */
void listener_set_close(ListenerSet *set);

/* Removes the socket file at path if it is still the one with that identity (another
 * instance may have replaced it since); logs what it cannot do. 0 when it is gone,
 * -ESTALE when it was left alone, or the error of unlink(). */
int listener_remove_socket_file(const char *path, dev_t dev, ino_t ino);
