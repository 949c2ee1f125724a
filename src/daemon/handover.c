/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handover.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "time-util.h"

/* The longest wait for PID 1 to have taken everything, before exiting all the same. */
#define BARRIER_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* A state bigger than this is refused unread: HANDOVER_CONNECTIONS_MAX lines of a few
 * hundred bytes fit with room to spare. */
#define STATE_SIZE_MAX (UINT64_C(1) << 30)

bool handover_possible(const Server *s, const char **ret_why) {
        if (s->listeners.inetd)
                *ret_why = "an Accept=yes instance serves one connection";
        else if (notify_fdstore_max() < 2)
                *ret_why = "no file descriptor store (FileDescriptorStoreMax= and $FDSTORE, under systemd)";
        else
                return true;
        return false;
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
                                r = state_profile(st, &generations, x, x->generations[j], &x->records[j].profile);
                        if (r < 0) {
                                free(fds);
                                return r;
                        }
                        *rec = x->records[j];
                        fds[k] = x->fds[j];
                        x->fds[j] = -1;         /* ours now */
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

/* The state first, then the sockets, NOTIFY_FDS_MAX a message. Our copies are closed as
 * they go: PID 1 holds them now. */
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
        for (size_t i = 0; i < n; i += NOTIFY_FDS_MAX) {
                size_t batch = MIN(n - i, (size_t)NOTIFY_FDS_MAX);

                r = notify_fdstore(HANDOVER_FDNAME_CONNECTION, fds + i, batch);
                if (r < 0)
                        return log_error_errno(r, "Restart: failed to store %zu connections: %s", n - i, STRERROR(r));
                for (size_t j = i; j < i + batch; j++)
                        fds[j] = safe_close(fds[j]);
                *ret_stored += batch;
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
                return log_error_errno(errno, "Restart: cannot read the handover state: %s", STRERROR(errno));
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
        if (worker_add_import(s->workers[*next_worker], &s->handover,
                              &(WorkerImport){ .fd = fd, .record = rec, .listener = l, .profile = rec->profile }) < 0)
                return false;
        *next_worker = (*next_worker + 1) % s->n_workers;
        return true;
}

void handover_take(Server *s) {
        ListenerSet *ls = &s->listeners;
        unsigned next = 0;
        size_t taken = 0;
        bool have_state;

        if (ls->handover_state_fd < 0 && ls->n_handover_fds == 0)
                return;
        have_state = ls->handover_state_fd >= 0 && state_read(ls->handover_state_fd, &s->handover) >= 0;
        for (size_t i = 0; i < ls->n_handover_fds; i++) {
                if (have_state && take_one(s, ls->handover_fds[i], &next)) {
                        taken++;
                        continue;
                }
                close_gracefully(&ls->handover_fds[i], 1);
        }
        /* Ours now, every one: PID 1 must not keep a closed connection half-alive. */
        notify_fdstore_remove(HANDOVER_FDNAME_CONNECTION);
        notify_fdstore_remove(HANDOVER_FDNAME_STATE);
        if (taken < ls->n_handover_fds || (have_state && s->handover.n_connections > ls->n_handover_fds))
                log_warning("Restart: resuming %zu connections of the previous ackd; %zu sockets could not be "
                            "matched to its state and were closed, %zu records had no socket left",
                            taken, ls->n_handover_fds - taken,
                            have_state && s->handover.n_connections > taken ? s->handover.n_connections - taken
                                                                            : 0);
        else
                log_notice("Restart: resuming %zu connections of the previous ackd", taken);
        /* Counted on the first listener: a socket without its record has no listener. */
        if (ls->n_items > 0)
                stat_add(&s->workers[0]->conns.stats[0].handover_lost, ls->n_handover_fds - taken);
        ls->handover_state_fd = safe_close(ls->handover_state_fd);
        ls->handover_fds = mfree(ls->handover_fds);
        ls->n_handover_fds = 0;
}

void handover_take_done(Server *s) {
        handover_state_done(&s->handover);
}
