/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where ackc connects to, resolved once: every address HOST resolves to (tried in
 * the resolver's order, as nc and curl do), or one AF_UNIX path. Plus the socket
 * helpers both commands use: non-blocking sockets, optional source binding, and
 * a connect that gives up after a timeout.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "address.h"
#include "args.h"

#define TARGET_ADDRESSES_MAX 16

typedef struct Target {
        Source addrs[TARGET_ADDRESSES_MAX];
        size_t n;
        char name[ADDRESS_HOST_MAX + 32]; /* as the user wrote it: "localhost port 9999", "unix:/run/x" */
} Target;

/* Resolves the target of a. Returns 0, or -EADDRNOTAVAIL with a message in err. */
int target_resolve(const ClientArgs *a, Target *ret, char *err, size_t err_size);

/* "[::1]:9999", "127.0.0.1:9999", "unix:/run/ackd.sock" */
const char *target_address_format(const Target *t, size_t i, char *buf, size_t size);

/* A non-blocking stream socket for family, bound to src (if not NULL) with the port left
 * to connect(), so many connections can share one source address. Returns the fd or a
 * negative errno. */
int client_socket(int family, const Source *src, bool nodelay);

/* Starts a connect on a non-blocking socket: 0 when connected already, -EINPROGRESS,
 * or the error (-EAGAIN: a unix socket's backlog is full, try again later). */
int client_connect_start(int fd, const Source *to);

/* The pending error of a socket (SO_ERROR), as a negative errno; 0 if none. */
int socket_pending_error(int fd);

/*
 * Connects to the target's addresses in order, starting at *index, giving each up to
 * timeout_ms. Returns a connected non-blocking fd (and in *index the address used) or
 * the error of the last address tried.
 */
int target_connect(const Target *t, size_t *index, uint64_t timeout_ms, bool nodelay);

/* Why target_connect() failed, as "cannot connect to NAME: " ends. */
const char *target_connect_strerror(int error);
