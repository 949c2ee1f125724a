/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "macro.h"
#include "time-util.h"
#include "worker.h"

#define MAX_EVENTS            256
#define ACCEPT_BATCH          64        /* accepts per wakeup, so one worker cannot hog a burst */
#define CONNECTION_SLAB_SIZE  256
#define ACCEPT_PAUSE_MS       100       /* after EMFILE and friends */
#define SCRATCH_MIN           65536

struct ConnectionSlab {
        ConnectionSlab *next;
        Connection items[CONNECTION_SLAB_SIZE];
};

Connection *worker_connection_alloc(Worker *w) {
        Connection *c;

        /* Connections come from slabs that are never returned while the worker runs:
         * no malloc per connection, and the total is bounded by max-connections. */
        if (!w->free_list) {
                ConnectionSlab *slab = malloc(sizeof *slab);

                if (!slab)
                        return NULL;
                slab->next = w->slabs;
                w->slabs = slab;
                for (size_t i = CONNECTION_SLAB_SIZE; i > 0; i--) {
                        slab->items[i - 1].timer.next = w->free_list ? &w->free_list->timer : NULL;
                        w->free_list = &slab->items[i - 1];
                }
        }

        c = w->free_list;
        w->free_list = c->timer.next ? container_of(c->timer.next, Connection, timer) : NULL;
        w->n_connections++;
        return c;
}

void worker_connection_release(Worker *w, Connection *c) {
        c->kind = 0;
        c->timer.next = w->free_list ? &w->free_list->timer : NULL;
        w->free_list = c;
        w->n_connections--;
}

void worker_profile_release(Worker *w, Profile *p) {
        if (!profile_unref(p))
                return;
        for (Profile **pp = &w->profiles; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p);
}

/* Takes the current settings: a new profile for new connections, and limits. */
static int worker_load_settings(Worker *w) {
        WorkerShared *sh = w->shared;
        unsigned generation;
        Profile *p;
        size_t scratch;

        pthread_mutex_lock(&sh->lock);
        p = profile_new(sh->settings);
        w->drain_timeout_ms = sh->settings->drain_timeout_ms;
        generation = sh->generation;
        pthread_mutex_unlock(&sh->lock);
        if (!p)
                return -ENOMEM;

        /* A oneshot message is one read into the scratch buffer: it must hold max-message. */
        scratch = MAX((size_t)SCRATCH_MIN, (size_t)p->max_message);
        if (scratch > w->scratch_size) {
                char *b = realloc(w->scratch, scratch);

                if (!b) {
                        free(p);
                        return -ENOMEM;
                }
                w->scratch = b;
                w->scratch_size = scratch;
        }

        p->next = w->profiles;
        w->profiles = p;
        if (w->profile)
                worker_profile_release(w, w->profile);
        w->profile = p;
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

                if (epoll_ctl(w->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, wl->listener->fd, on ? &ev : NULL) < 0)
                        return log_error_errno(errno, "Worker %u: failed to %s %s: %s", w->id,
                                               on ? "watch" : "unwatch", wl->listener->name, STRERROR(errno));
        }
        w->listening = on;
        return 0;
}

/* Out of fds or memory: stop accepting for a moment instead of spinning on a listener
 * that stays readable. Connections wait in the kernel's backlog meanwhile. */
static void worker_pause_accepting(Worker *w, const WorkerListener *wl, int error) {
        unsigned suppressed = 0;

        stat_add(&w->stats.accept_errors, 1);
        if (ratelimit_below(&w->shared->accept_log, w->now * USEC_PER_MSEC, &suppressed)) {
                if (suppressed > 0)
                        log_warning_errno(error, "accept() on %s failed: %s; pausing new connections for %ums "
                                          "(%u similar messages suppressed)",
                                          wl->listener->name, STRERROR(error), ACCEPT_PAUSE_MS, suppressed);
                else
                        log_warning_errno(error, "accept() on %s failed: %s; pausing new connections for %ums",
                                          wl->listener->name, STRERROR(error), ACCEPT_PAUSE_MS);
        }
        if (worker_listen(w, false) >= 0)
                w->accept_resume = w->now + ACCEPT_PAUSE_MS;
}

static void worker_accept(Worker *w, WorkerListener *wl) {
        for (unsigned i = 0; i < ACCEPT_BATCH && w->listening; i++) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof ss;
                int fd;

                fd = accept4(wl->listener->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                        connection_accept(w, wl->listener, fd, (struct sockaddr *)&ss, len);
                        continue;
                }

                switch (errno) {
                case EAGAIN:
                        return;         /* another worker took it, or the queue is empty */
                case EINTR:
                case ECONNABORTED:      /* the client gave up while queued */
                case EPROTO:
                case EPERM:             /* refused by a firewall hook */
                        continue;
                default:                /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or a broken listener */
                        worker_pause_accepting(w, wl, errno);
                        return;
                }
        }
}

static void for_each_in_queue(Worker *w, TimerQueue *q, void (*f)(Worker *w, Connection *c)) {
        /* f may move or close the entry, never its successor. */
        for (TimerEntry *e = timer_queue_first(q), *n; e; e = n) {
                n = timer_queue_next(q, e);
                f(w, container_of(e, Connection, timer));
        }
}

static void worker_for_each_connection(Worker *w, void (*f)(Worker *w, Connection *c)) {
        for (Profile *p = w->profiles, *next; p; p = next) {
                /* f may close the profile's last connection; hold it until we are done. */
                profile_ref(p);
                for_each_in_queue(w, &p->idle, f);
                next = p->next;
                worker_profile_release(w, p);
        }
        for_each_in_queue(w, &w->linger, f);
}

static void worker_report(Worker *w) {
        uint64_t one = 1;

        (void)!write(w->shared->event_fd, &one, sizeof one);
}

static void worker_begin_stop(Worker *w, bool abort_now) {
        if (!w->stopping) {
                w->stopping = true;
                w->accept_resume = 0;
                /* Only leave the epoll set; the listening sockets stay open (and, when they
                 * came from systemd, keep queueing connections for the next instance). */
                (void)worker_listen(w, false);
                atomic_store(&w->unlistened, true);
                worker_report(w);
                w->drain_deadline = w->now + w->drain_timeout_ms;
                worker_for_each_connection(w, connection_stop);
        }
        if (abort_now)
                worker_for_each_connection(w, connection_close);
}

static void worker_control(Worker *w) {
        uint64_t v;
        unsigned ctl;

        (void)!read(w->control_fd, &v, sizeof v);
        ctl = atomic_exchange(&w->control, 0);

        if ((ctl & WORKER_RELOAD) && !w->stopping) {
                int r = worker_load_settings(w);

                if (r < 0)
                        log_error_errno(r, "Worker %u: failed to apply new settings, keeping the old: %s", w->id,
                                        STRERROR(r));
                /* The main thread waits for every worker before it says "Reloaded". */
                worker_report(w);
        }
        if (ctl & (WORKER_STOP | WORKER_ABORT))
                worker_begin_stop(w, ctl & WORKER_ABORT);
}

static void worker_run_timers(Worker *w) {
        TimerEntry *e;

        for (Profile *p = w->profiles, *next; p; p = next) {
                profile_ref(p);
                while ((e = timer_queue_peek_expired(&p->idle, w->now)))
                        connection_timeout(w, container_of(e, Connection, timer));
                next = p->next;
                worker_profile_release(w, p);
        }
        while ((e = timer_queue_peek_expired(&w->linger, w->now)))
                connection_timeout(w, container_of(e, Connection, timer));

        if (w->stopping && w->now >= w->drain_deadline && w->n_connections > 0) {
                log_warning("Worker %u: drain timeout, closing %zu connections", w->id, w->n_connections);
                worker_for_each_connection(w, connection_close);
        }

        if (w->accept_resume && w->now >= w->accept_resume && !w->stopping) {
                if (worker_listen(w, true) >= 0)
                        w->accept_resume = 0;
                else
                        w->accept_resume = w->now + ACCEPT_PAUSE_MS;
        }
}

/* Milliseconds until the next timer, at most the heartbeat period. */
static int worker_timeout(Worker *w) {
        uint64_t next = timer_queue_next_deadline(&w->linger);

        for (Profile *p = w->profiles; p; p = p->next)
                next = MIN(next, timer_queue_next_deadline(&p->idle));
        if (w->stopping)
                next = MIN(next, w->drain_deadline);
        if (w->accept_resume)
                next = MIN(next, w->accept_resume);

        if (next <= w->now)
                return 0;
        return (int)MIN(next - w->now, (uint64_t)w->shared->heartbeat_ms);
}

static void *worker_main(void *userdata) {
        struct epoll_event events[MAX_EVENTS];
        Worker *w = userdata;

        w->now = now_msec_coarse();
        if (worker_listen(w, true) < 0) {
                atomic_store(&w->exited, true);
                worker_report(w);
                return NULL;
        }
        atomic_store(&w->started, true);
        worker_report(w);

        if (w->adopt) {
                int fd = w->adopt_fd;

                w->adopt_fd = -1;
                connection_accept(w, w->adopt, fd, NULL, 0);
        }

        for (;;) {
                bool control = false;
                int n;

                /* Stopping, or the one connection of inetd mode is done. */
                if ((w->stopping || w->adopt) && w->n_connections == 0)
                        break;

                n = epoll_wait(w->epoll_fd, events, MAX_EVENTS, worker_timeout(w));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "Worker %u: epoll_wait() failed: %s", w->id, STRERROR(errno));
                        break;
                }
                w->now = now_msec_coarse();

                for (int i = 0; i < n; i++) {
                        uint8_t *kind = events[i].data.ptr;

                        switch (*kind) {
                        case SOURCE_CONNECTION:
                                connection_dispatch(w, (Connection *)kind, events[i].events);
                                break;
                        case SOURCE_LISTENER:
                                if (w->listening)
                                        worker_accept(w, (WorkerListener *)kind);
                                break;
                        case SOURCE_CONTROL:
                                /* Acted on after the batch: stopping closes connections that
                                 * may still have events further down this array. */
                                control = true;
                                break;
                        }
                }

                if (control)
                        worker_control(w);
                worker_run_timers(w);
                atomic_fetch_add_explicit(&w->heartbeat, 1, memory_order_relaxed);
        }

        worker_for_each_connection(w, connection_close);
        atomic_store(&w->exited, true);
        worker_report(w);
        return NULL;
}

int worker_new(Worker **ret, unsigned id, WorkerShared *shared, const ListenerSet *listeners) {
        struct epoll_event ev = { .events = EPOLLIN };
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
        timer_queue_init(&w->linger, LINGER_TIMEOUT_MS);

        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epoll_fd < 0) {
                r = -errno;
                goto fail;
        }
        w->control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->control_fd < 0) {
                r = -errno;
                goto fail;
        }
        ev.data.ptr = &w->control_kind;
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->control_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }

        w->listeners = calloc(listeners->n_items, sizeof *w->listeners);
        if (!w->listeners && listeners->n_items > 0) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < listeners->n_items; i++)
                w->listeners[i] = (WorkerListener){ .kind = SOURCE_LISTENER, .listener = &listeners->items[i] };
        w->n_listeners = listeners->n_items;

        r = worker_load_settings(w);
        if (r < 0)
                goto fail;

        *ret = w;
        return 0;

fail:
        worker_free(w);
        return r;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        while (w->slabs) {
                ConnectionSlab *s = w->slabs;

                w->slabs = s->next;
                free(s);
        }
        if (w->profile)
                worker_profile_release(w, w->profile);
        free(w->listeners);
        free(w->scratch);
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
        uint64_t one = 1;

        atomic_fetch_or(&w->control, control);
        (void)!write(w->control_fd, &one, sizeof one);
}

void worker_join(Worker *w) {
        if (w->thread_started) {
                (void)pthread_join(w->thread, NULL);
                w->thread_started = false;
        }
}
