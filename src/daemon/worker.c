/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "fd-util.h"
#include "listener-seal.h"
#include "macro.h"
#include "time-util.h"
#include "worker.h"

#define MAX_EVENTS       256
#define ACCEPT_BATCH     64         /* accepts per wakeup, so one worker cannot hog a burst */
#define ACCEPT_PAUSE_MS  100        /* after EMFILE and friends */
#define STOP_SETTLE_MS   100        /* at a stop: accepting from sealed listeners, see below */
#define BACKLOG_TAKE_MAX (1u << 20) /* accepts per listener at its end: far above any queue */

/* Takes the current settings: a new profile for new connections, and limits. */
static int worker_load_settings(Worker *w) {
        WorkerShared *sh = w->shared;
        unsigned generation;
        Profile *p;
        int r;

        pthread_mutex_lock(&sh->lock);
        p = profile_new(sh->settings, sh->generation);
        w->drain_timeout_ms = sh->settings->drain_timeout_ms;
        generation = sh->generation;
        pthread_mutex_unlock(&sh->lock);
        if (!p)
                return -ENOMEM;

        r = connection_context_use(&w->conns, p);
        if (r < 0)
                return r;
        atomic_store(&w->generation, generation);
        return 0;
}

static int worker_listen(Worker *w, bool on) {
        if (w->listening == on)
                return 0;
        for (size_t i = 0; i < w->n_listeners; i++) {
                WorkerListener *wl = &w->listeners[i];
                /* EPOLLEXCLUSIVE: one worker is woken per connection, not all of them. */
                struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = wl };

                if (epoll_ctl(w->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, wl->listener->fd,
                              on ? &ev : NULL) < 0)
                        return log_error_errno(errno, "Worker %u: failed to %s %s: %s", w->id,
                                               on ? "watch" : "unwatch", wl->listener->name,
                                               STRERROR(errno));
        }
        w->listening = on;
        return 0;
}

/* Out of fds or memory: stop accepting for a moment instead of spinning on a listener
 * that stays readable. Connections wait in the kernel's backlog meanwhile. */
static void worker_pause_accepting(Worker *w, const WorkerListener *wl, int error) {
        uint64_t now = w->conns.now;
        unsigned suppressed = 0;

        stat_add(&w->conns.stats[wl->listener->index].accept_errors, 1);
        if (ratelimit_below(&w->shared->accept_log, now * USEC_PER_MSEC, &suppressed)) {
                if (suppressed > 0)
                        log_warning_errno(error,
                                          "accept() on %s failed: %s; pausing new connections for %ums "
                                          "(%u similar messages suppressed)",
                                          wl->listener->name, STRERROR(error), ACCEPT_PAUSE_MS, suppressed);
                else
                        log_warning_errno(error,
                                          "accept() on %s failed: %s; pausing new connections for %ums",
                                          wl->listener->name, STRERROR(error), ACCEPT_PAUSE_MS);
        }
        if (worker_listen(w, false) >= 0)
                w->accept_resume = now + ACCEPT_PAUSE_MS;
}

/* One accept(): 1 when a connection was taken, 0 when worth trying again, else -errno
 * (-EAGAIN: the queue is empty). */
static int worker_accept_one(Worker *w, WorkerListener *wl) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        Connection *c;
        int fd;

        fd = accept4(wl->listener->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
                c = connection_accept(&w->conns, wl->listener, fd, (struct sockaddr *)&ss, len);
                if (w->stopping) {
                        /* From the queue of a sealed listener: drained like the rest. */
                        wl->taken_at_stop++;
                        if (c)
                                connection_stop(&w->conns, c);
                }
                return 1;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED: /* the client gave up while queued */
        case EPROTO:
        case EPERM: /* refused by a firewall hook */
                return 0;
        default: /* EAGAIN; EMFILE, ENFILE, ENOBUFS, ENOMEM, or a broken listener */
                return -errno;
        }
}

static void worker_accept(Worker *w, WorkerListener *wl) {
        for (unsigned i = 0; i < ACCEPT_BATCH && w->listening; i++) {
                int r = worker_accept_one(w, wl);

                if (r == -EAGAIN)
                        return; /* another worker took it, or the queue is empty */
                if (r < 0) {
                        worker_pause_accepting(w, wl, -r);
                        return;
                }
        }
}

/*
 * Stopping: the listeners ackd bound itself are closed once every worker has left them,
 * and a close resets whatever the kernel queued in them. So they are sealed first (no
 * new connection gets in, listener-seal.h) and this worker keeps accepting from them for
 * STOP_SETTLE_MS: long enough for the handshakes under way to complete, including the
 * first data that TCP_DEFER_ACCEPT waits for. Returns whether anything was sealed.
 * (Listeners are all from systemd or all bound, listener.c: none from systemd is
 * watched meanwhile.)
 */
static bool worker_seal_listeners(Worker *w) {
        bool sealed = false;

        for (size_t i = 0; i < w->n_listeners; i++) {
                const Listener *l = w->listeners[i].listener;
                int r;

                if (l->activated)
                        continue; /* systemd keeps it, and its queue, for the next instance */
                r = listener_seal(l);
                if (r < 0)
                        log_debug_errno(r, "Worker %u: cannot seal %s: %s", w->id, l->name, STRERROR(r));
                else
                        sealed = true;
        }
        return sealed;
}

/* Leaves the listeners; after a settle (take_rest), first takes what their queues still
 * hold, which once sealed only shrinks but for the last handshakes: bounded, whatever
 * the other workers do meanwhile. */
static void worker_unlisten(Worker *w, bool take_rest) {
        for (size_t i = 0; i < w->n_listeners; i++) {
                WorkerListener *wl = &w->listeners[i];
                int r = 0;

                for (unsigned n = 0; take_rest && !wl->listener->activated && n < BACKLOG_TAKE_MAX; n++) {
                        r = worker_accept_one(w, wl);
                        if (r < 0)
                                break;
                }
                if (r < 0 && r != -EAGAIN)
                        log_debug_errno(r, "Worker %u: accept() on %s at stop: %s", w->id,
                                        wl->listener->name, STRERROR(r));
                if (w->settle_deadline > 0 && !wl->listener->activated)
                        log_debug("Worker %u: took %u connections from the backlog of %s at stop", w->id,
                                  wl->taken_at_stop, wl->listener->name);
        }
        w->settle_deadline = 0;
        /* Only leave the epoll set: the sockets stay open (and, when they came from
         * systemd, keep queueing connections for the next instance). */
        (void)worker_listen(w, false);
        atomic_store(&w->unlistened, true);
        eventfd_signal(w->shared->event_fd);
}

/* Stops accepting; drains (stop_connections) or leaves the connections to the caller. */
static void worker_begin_stop(Worker *w, bool abort_now, bool stop_connections) {
        if (!w->stopping) {
                w->stopping = true;
                w->accept_resume = 0;
                w->drain_deadline = w->conns.now + w->drain_timeout_ms;
                if (stop_connections)
                        connection_for_each(&w->conns, connection_stop);
                /* Not on a restart (the handover, stop_connections false), nor an abort. */
                if (stop_connections && !abort_now && worker_seal_listeners(w))
                        w->settle_deadline =
                                w->conns.now + MIN(w->drain_timeout_ms, (uint64_t)STOP_SETTLE_MS);
                else
                        worker_unlisten(w, false);
        }
        if (abort_now) {
                if (w->settle_deadline > 0)
                        worker_unlisten(w, false);
                connection_for_each(&w->conns, connection_close);
        }
}

/* The state's profile i in this worker, made at its first use. Its generation numbers
 * count down from UINT_MAX, apart from those of the settings, which count up. */
static Profile *import_profile(Worker *w, Profile **made, uint32_t i) {
        const HandoverProfile *hp = &w->import_state->profiles[i];
        Profile *p;

        if (made[i])
                return made[i];
        pthread_mutex_lock(&w->shared->lock);
        p = profile_new_with(w->shared->settings, UINT_MAX - i, hp->ack, hp->ack_len, hp->max_message,
                             hp->idle_timeout_ms);
        pthread_mutex_unlock(&w->shared->lock);
        if (p)
                profile_list_add(&w->conns.profiles, p);
        return made[i] = p;
}

static int import_order(const void *a, const void *b) {
        uint64_t x = ((const WorkerImport *)a)->record->timer_remaining_ms;
        uint64_t y = ((const WorkerImport *)b)->record->timer_remaining_ms;

        return x < y ? -1 : x > y;
}

/* Gives up a connection that cannot be resumed: EOF for its client, not a reset. */
static void import_fail(Worker *w, const WorkerImport *im, int error) {
        stat_add(&w->conns.stats[im->listener->index].handover_lost, 1);
        log_debug_errno(error, "Worker %u: cannot resume a connection (inode %llu): %s", w->id,
                        (unsigned long long)im->record->inode, STRERROR(error));
        (void)shutdown(im->fd, SHUT_WR);
        (void)close(im->fd);
}

/* Resumes what the previous ackd handed over, in the order of their timers (so each
 * timer queue stays ordered). */
static void worker_import_all(Worker *w) {
        Profile **made;

        if (w->n_imports == 0)
                return;
        made = calloc(w->import_state->n_profiles, sizeof *made);
        qsort(w->imports, w->n_imports, sizeof *w->imports, import_order);
        for (size_t i = 0; i < w->n_imports; i++) {
                const WorkerImport *im = &w->imports[i];
                Profile *p = made ? import_profile(w, made, im->profile) : NULL;
                int r = p ? connection_import(&w->conns, im->listener, p, im->fd, im->record) : -ENOMEM;

                if (r < 0)
                        import_fail(w, im, r);
        }
        /* The connections hold their profiles now. */
        for (size_t i = 0; made && i < w->import_state->n_profiles; i++)
                if (made[i])
                        profile_list_release(&w->conns.profiles, made[i]);
        free(made);
        w->imports = mfree(w->imports);
        w->n_imports = 0;
}

int worker_add_import(Worker *w, const HandoverState *state, const WorkerImport *import) {
        WorkerImport *a = realloc(w->imports, (w->n_imports + 1) * sizeof *a);

        if (!a)
                return -ENOMEM;
        w->imports = a;
        w->imports[w->n_imports++] = *import;
        w->import_state = state;
        return 0;
}

/* The profile of generation g, described once in the exports. */
static int export_profile(WorkerExport *x, const Profile *p) {
        for (size_t i = 0; i < x->n_profiles; i++)
                if (x->profile_generations[i] == p->generation)
                        return 0;
        if (x->n_profiles == x->profiles_allocated) {
                size_t n = MAX(x->profiles_allocated * 2, (size_t)4);
                HandoverProfile *hp = realloc(x->profiles, n * sizeof *hp);
                unsigned *g = hp ? realloc(x->profile_generations, n * sizeof *g) : NULL;

                if (hp)
                        x->profiles = hp;
                if (!g)
                        return -ENOMEM;
                x->profile_generations = g;
                x->profiles_allocated = n;
        }
        x->profiles[x->n_profiles] = (HandoverProfile){
                .ack_len = p->ack_len,
                .max_message = p->max_message,
                .idle_timeout_ms = p->idle.duration,
        };
        memcpy(x->profiles[x->n_profiles].ack, p->replies, p->ack_len);
        x->profile_generations[x->n_profiles++] = p->generation;
        return 0;
}

static int export_grow(WorkerExport *x) {
        size_t n = MAX(x->allocated * 2, (size_t)64);
        HandoverConnection *r = realloc(x->records, n * sizeof *r);
        int *fds = r ? realloc(x->fds, n * sizeof *fds) : NULL;
        unsigned *g = fds ? realloc(x->generations, n * sizeof *g) : NULL;

        if (r)
                x->records = r;
        if (fds)
                x->fds = fds;
        if (!g)
                return -ENOMEM;
        x->generations = g;
        x->allocated = n;
        return 0;
}

/* One connection: handed over if the store has room for it, else drained as on a stop. */
static void export_one(ConnectionContext *ctx, Connection *c, void *userdata) {
        Worker *w = userdata;
        WorkerExport *x = &w->exports;

        if (atomic_fetch_sub(&w->shared->handover_budget, 1) <= 0 ||
            (x->n == x->allocated && export_grow(x) < 0) || export_profile(x, c->profile) < 0 ||
            connection_export(ctx, c, &x->records[x->n], &x->fds[x->n], &x->generations[x->n]) < 0) {
                connection_stop(ctx, c);
                return;
        }
        x->n++;
}

/* A restart: stop accepting, export what can be, drain the rest (usually nothing). */
static void worker_begin_handover(Worker *w) {
        worker_begin_stop(w, false, false);
        connection_for_each_with(&w->conns, export_one, w);
        atomic_store(&w->exported, true);
        eventfd_signal(w->shared->event_fd);
}

static void worker_control(Worker *w) {
        unsigned ctl;

        eventfd_drain(w->control_fd);
        ctl = atomic_exchange(&w->control, 0);

        if ((ctl & WORKER_RELOAD) && !w->stopping) {
                int r = worker_load_settings(w);

                if (r < 0)
                        log_error_errno(r, "Worker %u: failed to apply new settings, keeping the old: %s",
                                        w->id, STRERROR(r));
                /* The main thread waits for every worker before it says "Reloaded". */
                eventfd_signal(w->shared->event_fd);
        }
        if ((ctl & WORKER_HANDOVER) && !w->stopping)
                worker_begin_handover(w);
        if (ctl & (WORKER_STOP | WORKER_ABORT))
                worker_begin_stop(w, ctl & WORKER_ABORT, true);
}

static void worker_run_timers(Worker *w) {
        uint64_t now = w->conns.now;

        connection_run_timers(&w->conns);

        if (w->settle_deadline > 0 && now >= w->settle_deadline)
                worker_unlisten(w, true);

        if (w->stopping && now >= w->drain_deadline && connection_count(&w->conns) > 0) {
                log_warning("Worker %u: drain timeout, closing %zu connections", w->id,
                            connection_count(&w->conns));
                connection_for_each(&w->conns, connection_close);
        }

        if (w->accept_resume && now >= w->accept_resume && !w->stopping) {
                if (worker_listen(w, true) >= 0)
                        w->accept_resume = 0;
                else
                        w->accept_resume = now + ACCEPT_PAUSE_MS;
        }
}

/* Milliseconds until the next timer, at most the heartbeat period. */
static int worker_timeout(Worker *w) {
        uint64_t now = w->conns.now, next = connection_next_deadline(&w->conns);

        if (w->stopping)
                next = MIN(next, w->drain_deadline);
        if (w->settle_deadline > 0)
                next = MIN(next, w->settle_deadline);
        if (w->accept_resume)
                next = MIN(next, w->accept_resume);

        if (next <= now)
                return 0;
        return (int)MIN(next - now, (uint64_t)w->shared->heartbeat_ms);
}

/* Handles one batch of events. Returns false if the loop must end. */
static bool worker_wait(Worker *w) {
        struct epoll_event events[MAX_EVENTS];
        bool control = false;
        int n;

        n = epoll_wait(w->epoll_fd, events, MAX_EVENTS, worker_timeout(w));
        if (n < 0) {
                if (errno == EINTR)
                        return true;
                log_error_errno(errno, "Worker %u: epoll_wait() failed: %s", w->id, STRERROR(errno));
                return false;
        }
        w->conns.now = now_msec_coarse();

        for (int i = 0; i < n; i++) {
                uint8_t *kind = events[i].data.ptr;

                switch (*kind) {
                case SOURCE_CONNECTION:
                        connection_dispatch(&w->conns, (Connection *)kind, events[i].events);
                        break;
                case SOURCE_LISTENER:
                        if (w->listening)
                                worker_accept(w, (WorkerListener *)kind);
                        break;
                case SOURCE_CONTROL:
                        /* Acted on after the batch: stopping closes connections that may
                         * still have events further down this array. */
                        control = true;
                        break;
                }
        }

        if (control)
                worker_control(w);
        worker_run_timers(w);
        atomic_fetch_add_explicit(&w->heartbeat, 1, memory_order_relaxed);
        return true;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        char name[16];

        /* For top -H, and for tests that stop one worker to see /healthz notice. */
        (void)snprintf(name, sizeof name, "ackd-worker-%u", w->id);
        (void)pthread_setname_np(pthread_self(), name);
        w->conns.now = now_msec_coarse();
        if (worker_listen(w, true) < 0) {
                atomic_store(&w->exited, true);
                eventfd_signal(w->shared->event_fd);
                return NULL;
        }
        worker_import_all(w);
        atomic_store(&w->started, true);
        eventfd_signal(w->shared->event_fd);

        if (w->adopt) {
                int fd = w->adopt_fd;

                w->adopt_fd = -1;
                (void)connection_accept(&w->conns, w->adopt, fd, NULL, 0);
        }

        /* Until stopping, or the one connection of inetd mode, is done. */
        while (!(((w->stopping && w->settle_deadline == 0) || w->adopt) && connection_count(&w->conns) == 0))
                if (!worker_wait(w))
                        break;

        connection_for_each(&w->conns, connection_close);
        atomic_store(&w->exited, true);
        eventfd_signal(w->shared->event_fd);
        return NULL;
}

static int worker_init(Worker *w, const ListenerSet *listeners, bool watch) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->control_kind };
        int r;

        r = connection_context_init(&w->conns, -1, listeners->n_items, &w->shared->admission,
                                    &w->shared->connection_logs);
        if (r < 0)
                return r;
        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epoll_fd < 0)
                return -errno;
        w->conns.epoll_fd = w->epoll_fd;

        r = eventfd_open();
        if (r < 0)
                return r;
        w->control_fd = r;
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->control_fd, &ev) < 0)
                return -errno;

        w->listeners = calloc(MAX(listeners->n_items, 1u), sizeof *w->listeners);
        if (!w->listeners)
                return -ENOMEM;
        /* Metrics listeners are the metrics thread's. */
        for (size_t i = 0; watch && i < listeners->n_items; i++)
                if (listeners->items[i].mode != PROTOCOL_METRICS)
                        w->listeners[w->n_listeners++] =
                                (WorkerListener){ .kind = SOURCE_LISTENER,
                                                  .listener = &listeners->items[i] };

        return worker_load_settings(w);
}

int worker_new(Worker **ret, unsigned id, WorkerShared *shared, const ListenerSet *listeners, bool watch) {
        Worker *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (Worker){
                .shared = shared,
                .id = id,
                .epoll_fd = -1,
                .control_fd = -1,
                .adopt_fd = -1,
                .control_kind = SOURCE_CONTROL,
        };
        r = worker_init(w, listeners, watch);
        if (r < 0) {
                worker_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

static void worker_exports_done(WorkerExport *x) {
        for (size_t i = 0; i < x->n; i++)
                safe_close(x->fds[i]);
        free(x->records);
        free(x->fds);
        free(x->generations);
        free(x->profiles);
        free(x->profile_generations);
        *x = (WorkerExport){ 0 };
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->n_imports; i++)
                safe_close(w->imports[i].fd);
        free(w->imports);
        worker_exports_done(&w->exports);
        connection_context_done(&w->conns);
        free(w->listeners);
        safe_close(w->adopt_fd);
        safe_close(w->control_fd);
        safe_close(w->epoll_fd);
        free(w);
        return NULL;
}

void worker_adopt(Worker *w, const Listener *l, int fd) {
        w->adopt = l;
        w->adopt_fd = fd;
}

int worker_start(Worker *w) {
        int r = pthread_create(&w->thread, NULL, worker_main, w);

        if (r != 0)
                return -r;
        w->thread_started = true;
        return 0;
}

void worker_signal(Worker *w, unsigned control) {
        atomic_fetch_or(&w->control, control);
        eventfd_signal(w->control_fd);
}

void worker_join(Worker *w) {
        if (w->thread_started) {
                (void)pthread_join(w->thread, NULL);
                w->thread_started = false;
        }
}
