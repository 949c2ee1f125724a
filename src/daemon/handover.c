/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "handover.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "time-util.h"

/* Sockets one carrier holds (see carrier_fill()): a few messages of NOTIFY_FDS_MAX, well
 * within what a socket buffer holds unread. */
#define CARRIER_FDS_MAX (4 * NOTIFY_FDS_MAX)

/* The longest wait for PID 1 to have taken everything, before exiting all the same. */
#define BARRIER_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* A state bigger than this is refused unread: HANDOVER_CONNECTIONS_MAX lines of a few
 * hundred bytes fit with room to spare. */
#define STATE_SIZE_MAX (UINT64_C(1) << 30)

bool handover_possible(const Server *s, const char **ret_why) {
        if (s->listeners.inetd)
                *ret_why = "an Accept=yes instance serves one connection";
        else if (notify_fdstore_max() < 2)
                *ret_why = "no file descriptor store of 2 or more "
                           "(FileDescriptorStoreMax= and $FDSTORE, under systemd)";
        else
                return true;
        return false;
}

uint64_t handover_capacity(void) {
        uint64_t store = notify_fdstore_max();

        /* One place in the store is the state's, each other holds a carrier. */
        if (store < 2)
                return 0;
        return MIN((store - 1) * CARRIER_FDS_MAX, (uint64_t)HANDOVER_CONNECTIONS_MAX);
}

/* --- giving --------------------------------------------------------------------------------- */

/* The state's profile index of generation g, adding it from the worker export x. */
static int state_profile(HandoverState *st, unsigned **generations, const WorkerExport *x, unsigned g,
                         uint32_t *ret) {
        HandoverProfile *hp;
        unsigned *gs;
        int r;

        for (size_t i = 0; i < st->n_profiles; i++)
                if ((*generations)[i] == g) {
                        *ret = (uint32_t)i;
                        return 0;
                }
        for (size_t i = 0; i < x->n_profiles; i++) {
                if (x->profile_generations[i] != g)
                        continue;
                r = handover_state_add_profile(st, &hp);
                if (r < 0)
                        return r;
                *hp = x->profiles[i];
                gs = realloc(*generations, st->n_profiles * sizeof *gs);
                if (!gs)
                        return -ENOMEM;
                gs[st->n_profiles - 1] = g;
                *generations = gs;
                *ret = (uint32_t)(st->n_profiles - 1);
                return 0;
        }
        return -ENOENT;
}

static int state_listeners(HandoverState *st, const ListenerSet *ls) {
        for (size_t i = 0; i < ls->n_items; i++) {
                HandoverListener *hl;
                int r = handover_state_add_listener(st, &hl);

                if (r < 0)
                        return r;
                (void)snprintf(hl->name, sizeof hl->name, "%s", ls->items[i].name);
                hl->mode = (uint8_t)ls->items[i].mode;
                hl->proxy = ls->items[i].proxy;
        }
        return 0;
}

/* Every worker's exports in one state, and their sockets in fds (in the same order as
 * the state will list them once sorted: by inode). */
static int state_build(Server *s, HandoverState *st, int **ret_fds, size_t *ret_n) {
        _cleanup_(freep) unsigned *generations = NULL;
        size_t n = 0, k = 0;
        int *fds;
        int r;

        r = state_listeners(st, &s->listeners);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < s->n_workers; i++)
                n += s->workers[i]->exports.n;
        fds = malloc(MAX(n, (size_t)1) * sizeof *fds);
        if (!fds)
                return -ENOMEM;
        for (unsigned i = 0; i < s->n_workers; i++) {
                WorkerExport *x = &s->workers[i]->exports;

                for (size_t j = 0; j < x->n; j++, k++) {
                        HandoverConnection *rec;

                        r = handover_state_add_connection(st, &rec);
                        if (r >= 0)
                                r = state_profile(st, &generations, x, x->generations[j],
                                                  &x->records[j].profile);
                        if (r < 0) {
                                free(fds);
                                return r;
                        }
                        *rec = x->records[j];
                        fds[k] = x->fds[j];
                        x->fds[j] = -1; /* ours now */
                }
        }
        handover_state_sort(st);
        *ret_fds = fds;
        *ret_n = n;
        return 0;
}

/* The state, formatted into a sealed memfd. */
static int state_memfd(const HandoverState *st) {
        _cleanup_(freep) char *text = NULL;
        _cleanup_(closep) int fd = -1;
        size_t len, off = 0;
        int r;

        r = handover_state_format(st, &text, &len);
        if (r < 0)
                return r;
        fd = memfd_create(HANDOVER_FDNAME_STATE, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t k = write(fd, text + off, len - off);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t)k;
        }
        /* Sealed: what the next ackd reads is what this one wrote. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return take_fd(&fd);
}

/* Gives up sockets that could not be stored: EOF for their clients. */
static void close_gracefully(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++) {
                (void)shutdown(fds[i], SHUT_WR);
                fds[i] = safe_close(fds[i]);
        }
}

/* Sends fds[0..n) into a new carrier: one end of a datagram socket pair that holds them,
 * in flight, in NOTIFY_FDS_MAX batches, for whoever reads its other end. The store gets
 * the carriers rather than the sockets themselves: systemd (252 at least) compares each
 * fd stored with every fd already there, which for 10,000 connections kept PID 1 busy
 * for 30 s, and lists every stored fd's name in one $LISTEN_FDNAMES, which over 128 KiB
 * fails the next exec with E2BIG. A datagram socket reports no POLLHUP once its peer is
 * gone, so PID 1 keeps the carrier. Returns the carrier; *ret_sent says how many went. */
static int carrier_fill(const int *fds, size_t n, size_t *ret_sent) {
        int pair[2], r = 0;
        size_t sent = 0;

        *ret_sent = 0;
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        while (sent < n) {
                size_t batch = MIN(n - sent, (size_t)NOTIFY_FDS_MAX);
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
                } control = { 0 };
                char byte = 'c';
                struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = &control,
                                     .msg_controllen = CMSG_SPACE(sizeof(int) * batch) };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * batch);
                memcpy(CMSG_DATA(cm), fds + sent, sizeof(int) * batch);
                if (sendmsg(pair[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                        r = -errno;
                        break;
                }
                sent += batch;
        }
        (void)close(pair[1]);
        if (sent == 0) {
                (void)close(pair[0]);
                return r < 0 ? r : -EINVAL;
        }
        *ret_sent = sent;
        return pair[0];
}

/* Every fd a carrier holds, appended to *fds, and the carrier closed. Returns nonzero if
 * some were lost on the way (a message cut short, out of fds or memory). */
static size_t carrier_empty(int carrier, int **fds, size_t *n) {
        size_t lost = 0;

        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
                } control;
                char byte;
                struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = &control,
                                     .msg_controllen = sizeof control };
                ssize_t k = recvmsg(carrier, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                lost += (mh.msg_flags & MSG_CTRUNC) != 0;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                        size_t m = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int *a;

                        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                                continue;
                        a = realloc(*fds, (*n + m) * sizeof *a);
                        if (!a) {
                                for (size_t i = 0; i < m; i++)
                                        (void)close(((int *)CMSG_DATA(cm))[i]);
                                lost += m;
                                continue;
                        }
                        memcpy(a + *n, CMSG_DATA(cm), m * sizeof(int));
                        *fds = a;
                        *n += m;
                }
        }
        (void)close(carrier);
        return lost;
}

/* The state first, then the sockets, in carriers of CARRIER_FDS_MAX. Our copies are closed
 * once a carrier holding them is in the store: PID 1 holds them now. */
static int store(const HandoverState *st, int *fds, size_t n, size_t *ret_stored) {
        _cleanup_(closep) int state = -1;
        int r;

        *ret_stored = 0;
        state = r = state_memfd(st);
        if (r < 0)
                return log_error_errno(r, "Restart: failed to write the handover state: %s", STRERROR(r));
        r = notify_fdstore(HANDOVER_FDNAME_STATE, &state, 1);
        if (r < 0)
                return log_error_errno(r, "Restart: failed to store the handover state: %s", STRERROR(r));
        for (size_t i = 0; i < n;) {
                _cleanup_(closep) int carrier = -1;
                size_t sent;

                carrier = r = carrier_fill(fds + i, MIN(n - i, (size_t)CARRIER_FDS_MAX), &sent);
                if (r < 0)
                        return log_error_errno(r, "Restart: failed to pass %zu connections on: %s", n - i,
                                               STRERROR(r));
                r = notify_fdstore(HANDOVER_FDNAME_CONNECTIONS, &carrier, 1);
                if (r < 0) {
                        /* Ours again: closed gracefully by the caller. */
                        int *back = NULL;
                        size_t n_back = 0;

                        (void)carrier_empty(take_fd(&carrier), &back, &n_back);
                        for (size_t j = 0; j < n_back; j++)
                                safe_close(back[j]);
                        free(back);
                        return log_error_errno(r, "Restart: failed to store %zu connections: %s", n - i,
                                               STRERROR(r));
                }
                for (size_t j = i; j < i + sent; j++)
                        fds[j] = safe_close(fds[j]);
                i += sent;
                *ret_stored = i;
        }
        return 0;
}

int handover_give(Server *s) {
        _cleanup_(handover_state_done) HandoverState st = { 0 };
        _cleanup_(freep) int *fds = NULL;
        size_t n = 0, stored = 0;
        int r;

        r = state_build(s, &st, &fds, &n);
        if (r < 0)
                log_error_errno(r, "Restart: failed to gather the connections: %s", STRERROR(r));
        else
                r = store(&st, fds, n, &stored);
        if (stored < n) {
                log_error("Restart: closing %zu connections that could not be handed over", n - stored);
                close_gracefully(fds + stored, n - stored);
        }
        /* Exiting before PID 1 has them all would close them. */
        if (notify_barrier(BARRIER_TIMEOUT_USEC) < 0)
                log_warning("Restart: the service manager did not confirm the handover in time");
        if (r >= 0)
                log_notice("Restart: handed %zu connections to the next ackd", stored);
        return r;
}

/* --- taking --------------------------------------------------------------------------------- */

/* Reads the state fd the previous ackd left. */
static int state_read(int fd, HandoverState *st) {
        char err[HANDOVER_ERROR_MAX];
        struct stat sb;
        void *p;
        int r;

        if (fstat(fd, &sb) < 0)
                return log_error_errno(errno, "Restart: cannot read the handover state: %s",
                                       STRERROR(errno));
        if (sb.st_size <= 0 || (uint64_t)sb.st_size > STATE_SIZE_MAX)
                return log_error_errno(EBADMSG, "Restart: the handover state has a size of %lld bytes",
                                       (long long)sb.st_size);
        p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return log_error_errno(errno, "Restart: cannot map the handover state: %s", STRERROR(errno));
        r = handover_state_parse(p, (size_t)sb.st_size, st, err, sizeof err);
        (void)munmap(p, (size_t)sb.st_size);
        if (r < 0)
                return log_error_errno(r, "Restart: refusing the handover state: %s", err);
        return 0;
}

/* This ackd's listener for the state's listener i: the same name and mode. */
static const Listener *match_listener(const ListenerSet *ls, const HandoverState *st, uint32_t i) {
        const HandoverListener *hl = &st->listeners[i];

        for (size_t j = 0; j < ls->n_items; j++)
                if (strcmp(ls->items[j].name, hl->name) == 0 && ls->items[j].mode == hl->mode &&
                    ls->items[j].proxy == hl->proxy)
                        return &ls->items[j];
        return NULL;
}

/* Gives one stored socket to a worker. Returns false if it cannot be resumed. */
static bool take_one(Server *s, int fd, unsigned *next_worker) {
        const HandoverConnection *rec;
        const Listener *l;
        struct stat sb;
        int flags;

        if (fstat(fd, &sb) < 0 || !S_ISSOCK(sb.st_mode))
                return false;
        rec = handover_state_find(&s->handover, (uint64_t)sb.st_ino);
        if (!rec)
                return false;
        l = match_listener(&s->listeners, &s->handover, rec->listener);
        if (!l)
                return false;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return false;
        if (worker_add_import(
                    s->workers[*next_worker], &s->handover,
                    &(WorkerImport){ .fd = fd, .record = rec, .listener = l, .profile = rec->profile }) < 0)
                return false;
        *next_worker = (*next_worker + 1) % s->n_workers;
        return true;
}

/* The sockets the previous ackd stored, on their own or in carriers (which are closed). */
static int *take_sockets(ListenerSet *ls, size_t *ret_n, size_t *ret_lost) {
        int *fds = ls->handover_sockets;

        *ret_n = ls->n_handover_sockets;
        *ret_lost = 0;
        ls->handover_sockets = NULL;
        ls->n_handover_sockets = 0;
        for (size_t i = 0; i < ls->n_handover_carriers; i++) {
                *ret_lost += carrier_empty(ls->handover_carriers[i], &fds, ret_n);
                ls->handover_carriers[i] = -1;
        }
        ls->handover_carriers = mfree(ls->handover_carriers);
        ls->n_handover_carriers = 0;
        return fds;
}

void handover_take(Server *s) {
        ListenerSet *ls = &s->listeners;
        _cleanup_(freep) int *fds = NULL;
        size_t taken = 0, n, lost, missing;
        unsigned next = 0;
        bool have_state;

        if (ls->handover_state_fd < 0 && ls->n_handover_carriers == 0 && ls->n_handover_sockets == 0)
                return;
        fds = take_sockets(ls, &n, &lost);
        have_state = ls->handover_state_fd >= 0 && state_read(ls->handover_state_fd, &s->handover) >= 0;
        for (size_t i = 0; i < n; i++) {
                if (have_state && take_one(s, fds[i], &next)) {
                        taken++;
                        continue;
                }
                close_gracefully(&fds[i], 1);
        }
        /* Ours now, every one: PID 1 must not keep a closed connection half-alive. */
        notify_fdstore_remove(HANDOVER_FDNAME_CONNECTIONS);
        notify_fdstore_remove(HANDOVER_FDNAME_CONNECTION);
        notify_fdstore_remove(HANDOVER_FDNAME_STATE);
        missing = have_state && s->handover.n_connections > taken ? s->handover.n_connections - taken : 0;
        if (taken < n || missing > 0 || lost > 0)
                log_warning(
                        "Restart: resuming %zu connections of the previous ackd; %zu sockets could not be "
                        "matched to its state and were closed, %zu records had no socket left%s",
                        taken, n - taken, missing, lost > 0 ? " (some lost: out of file descriptors)" : "");
        else
                log_notice("Restart: resuming %zu connections of the previous ackd", taken);
        /* Counted on the first listener: a socket without its record has no listener. */
        if (ls->n_items > 0)
                stat_add(&s->workers[0]->conns.stats[0].handover_lost, n - taken);
        ls->handover_state_fd = safe_close(ls->handover_state_fd);
}

void handover_take_done(Server *s) {
        handover_state_done(&s->handover);
}
