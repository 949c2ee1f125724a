/* SPDX-License-Identifier: MIT */
/*
 * The engine's core: the loop, its timeouts and wake-ups, the snapshot for the
 * progress line, and the thread. What the connections do is the workload's
 * (workload-*.c), chosen here once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fd-util.h"
#include "log.h"
#include "proxy-header.h"

#define MAX_EVENTS  256
#define TICK_NS     (100 * NS_PER_MS) /* timeout scan */
#define SNAPSHOT_NS (250 * NS_PER_MS) /* progress snapshot */

void engine_result_init(EngineResult *r) {
        memset(r, 0, offsetof(EngineResult, hist));
        histogram_init(&r->hist);
}

/* Slots freed since the last round, and failed ones whose pause is over, start their next
 * work. What frees or fails again while being refilled waits for the next round. */
static void engine_refill(Engine *e) {
        List todo = e->free;
        Conn *c;

        if (!e->w->refill)
                return;
        e->free = (List){ .link = LINK_QUEUE };
        while (e->retry.head && e->retry.head->retry_at <= e->now)
                list_push(&todo, list_pop(&e->retry));
        while ((c = list_pop(&todo))) {
                c->state = CONN_FREE;
                e->w->refill(e, c);
        }
}

/* --rate: hands due requests to connections (or slots) that have room. */
static void engine_issue(Engine *e) {
        uint64_t n;
        Conn *c;

        if (!e->rate)
                return;
        while ((n = engine_available(e)) > 0 && (c = list_pop(&e->ready))) {
                c->listed = false;
                e->w->issue(e, c, n);
        }
}

static void engine_timeouts(Engine *e) {
        for (size_t i = 0; i < e->n_conns; i++) {
                Conn *c = &e->conns[i];

                if (c->fd < 0 || c->deadline == 0 || c->deadline > e->now)
                        continue;
                if (c->state == CONN_CONNECTING)
                        engine_count_error(e, ERROR_TIMEOUT, "connect to %s: no answer within %llums",
                                           e->sh->target_name,
                                           (unsigned long long)(e->sh->timeout_ns / NS_PER_MS));
                else
                        engine_count_error(e, ERROR_TIMEOUT, "%s: no reply within %llums",
                                           e->sh->target_name,
                                           (unsigned long long)(e->sh->timeout_ns / NS_PER_MS));
                conn_fail(e, c);
        }
}

static void engine_snapshot_save(Engine *e) {
        pthread_mutex_lock(&e->lock);
        memcpy(e->snapshot, &e->result, sizeof e->result);
        pthread_mutex_unlock(&e->lock);
}

static bool engine_should_stop(const Engine *e) {
        return atomic_load_explicit(&e->sh->stop, memory_order_relaxed) ||
               (e->sh->end && e->now >= e->sh->end) || (e->budget != UINT64_MAX && e->issued >= e->budget);
}

static void engine_begin_stop(Engine *e) {
        Conn *c;

        e->stopping = true;
        if (e->rate && e->issued < e->budget)
                e->result.unsent = min_u64(schedule_due(&e->schedule, e->now), e->budget) - e->issued;
        while ((c = list_pop(&e->free)))
                c->state = CONN_FREE;
        while ((c = list_pop(&e->retry)))
                c->state = CONN_FREE;
        while ((c = list_pop(&e->ready)))
                c->listed = false;
        if (e->w->stop)
                e->w->stop(e);
}

static uint64_t engine_next_wakeup(const Engine *e) {
        uint64_t t = e->next_tick;

        if (e->free.head)
                t = e->now; /* freed while being refilled */
        if (e->retry.head)
                t = min_u64(t, e->retry.head->retry_at);
        if (!e->stopping && e->sh->end)
                t = min_u64(t, e->sh->end);
        if (e->rate && !e->stopping && e->issued < e->budget && e->ready.head)
                t = min_u64(t, schedule_time(&e->schedule, e->issued));
        if (e->w->wakeup)
                t = e->w->wakeup(e, t);
        return t;
}

static int engine_wait(Engine *e, struct epoll_event *events) {
        uint64_t wake = engine_next_wakeup(e), ns = wake > e->now ? wake - e->now : 0;

#if HAVE_EPOLL_PWAIT2
        if (!e->no_pwait2) {
                /* Nanoseconds: a schedule of a few µs per request must not round to 1 ms. */
                struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
                                       .tv_nsec = (long)(ns % 1000000000u) };
                int n = epoll_pwait2(e->epoll_fd, events, MAX_EVENTS, &ts, NULL);

                if (n >= 0 || errno != ENOSYS)
                        return n;
                /* A kernel before 5.11 (or valgrind): milliseconds it is. */
                e->no_pwait2 = true;
        }
#endif
        return epoll_wait(e->epoll_fd, events, MAX_EVENTS, (int)((ns + NS_PER_MS - 1) / NS_PER_MS));
}

static void engine_begin(Engine *e) {
        e->now = clock_ns();
        e->next_tick = e->now + TICK_NS;
        e->next_snapshot = e->now + SNAPSHOT_NS;
        e->schedule = (Schedule){
                .t0 = e->sh->t0,
                .end = e->sh->end,
                .rate = e->args->rate,
                .id = e->id,
                .n_threads = e->sh->n_threads,
        };
        if (e->rate)
                /* The schedule needs the timer to be precise, not coalesced. */
                (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

        /* Every slot starts free: the first round fills them all. */
        if (e->w->refill)
                for (size_t i = 0; i < e->n_conns; i++)
                        list_push(&e->free, &e->conns[i]);
}

static void engine_run(Engine *e) {
        struct epoll_event events[MAX_EVENTS];

        engine_begin(e);
        for (;;) {
                int n;

                if (!e->stopping && engine_should_stop(e))
                        engine_begin_stop(e);
                if (e->w->step)
                        e->w->step(e);
                engine_refill(e);
                engine_issue(e);
                if (e->w->finished(e))
                        break;

                n = engine_wait(e, events);
                e->now = clock_ns();
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "epoll_wait() failed: %s", STRERROR(errno));
                        break;
                }
                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;

                        if (c->fd >= 0)
                                e->w->event(e, c, events[i].events);
                }

                if (e->now >= e->next_tick) {
                        engine_timeouts(e);
                        e->next_tick = e->now + TICK_NS;
                }
                if (e->sh->progress && e->now >= e->next_snapshot) {
                        engine_snapshot_save(e);
                        e->next_snapshot = e->now + SNAPSHOT_NS;
                }
        }

        for (size_t i = 0; i < e->n_conns; i++)
                conn_close(e, &e->conns[i]);
        e->result.end = clock_ns();
        if (e->sh->progress)
                engine_snapshot_save(e);
}

static void *engine_thread(void *userdata) {
        Engine *e = userdata;

        engine_run(e);
        eventfd_signal(e->sh->done_fd);
        return NULL;
}

static const Workload *workload_for(const ClientArgs *a) {
        if (a->idle > 0)
                return &workload_idle;
        if (a->mode == PROTOCOL_LINE)
                return &workload_line;
        return &workload_oneshot;
}

/* Everything the engine will ever need, before the run starts. */
static int engine_allocate(Engine *e, uint64_t first_index, uint64_t stride) {
        e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (e->epoll_fd < 0)
                return negative_errno();
        e->conns = calloc(MAX(e->n_conns, 1u), sizeof *e->conns);
        e->scratch = malloc(SCRATCH_SIZE);
        if (e->sh->progress)
                e->snapshot = malloc(sizeof *e->snapshot);
        if (!e->conns || !e->scratch || (e->sh->progress && !e->snapshot))
                return -ENOMEM;
        if (e->sh->proxy && !e->sh->proxy_fixed) {
                e->proxy_headers = malloc(MAX(e->n_conns, 1u) * CLIENT_PROXY_HEADER_MAX);
                if (!e->proxy_headers)
                        return -ENOMEM;
        }
        if (e->snapshot)
                engine_result_init(e->snapshot);
        for (size_t i = 0; i < e->n_conns; i++)
                e->conns[i] = (Conn){ .fd = -1, .index = first_index + i * stride };
        return e->w->init ? e->w->init(e) : 0;
}

int engine_new(Engine **ret, EngineShared *sh, unsigned id, uint64_t first_index, uint64_t stride, size_t n,
               uint64_t budget) {
        const ClientArgs *a = sh->args;
        Engine *e;
        int r;

        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        *e = (Engine){
                .sh = sh,
                .args = a,
                .w = workload_for(a),
                .id = id,
                .epoll_fd = -1,
                .n_conns = n,
                .depth = (uint32_t)MAX(a->depth, 1u),
                .needs_eof = a->mode == PROTOCOL_ONESHOT,
                .rate = a->rate > 0,
                .budget = budget,
                .free = { .link = LINK_QUEUE },
                .retry = { .link = LINK_QUEUE },
                .ready = { .link = LINK_READY },
        };
        engine_result_init(&e->result);
        pthread_mutex_init(&e->lock, NULL);

        r = engine_allocate(e, first_index, stride);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        for (size_t i = 0; e->conns && i < e->n_conns; i++)
                e->conns[i].fd = safe_close(e->conns[i].fd);
        safe_close(e->epoll_fd);
        free(e->conns);
        free(e->runs);
        free(e->proxy_headers);
        free(e->scratch);
        free(e->snapshot);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return NULL;
}

int engine_start(Engine *e) {
        int r = pthread_create(&e->thread, NULL, engine_thread, e);

        if (r != 0)
                return -r;
        e->started = true;
        return 0;
}

void engine_join(Engine *e) {
        if (e->started)
                (void)pthread_join(e->thread, NULL);
        e->started = false;
}

static void result_add(EngineResult *dst, const EngineResult *src) {
        dst->sent += src->sent;
        dst->completed += src->completed;
        dst->connected += src->connected;
        dst->unsent += src->unsent;
        dst->idle_opened += src->idle_opened;
        dst->idle_held += src->idle_held;
        for (size_t k = 0; k < _ERROR_KIND_MAX; k++) {
                if (dst->errors[k] == 0 && src->errors[k] > 0)
                        memcpy(dst->detail[k], src->detail[k], sizeof dst->detail[k]);
                dst->errors[k] += src->errors[k];
        }
        dst->end = MAX(dst->end, src->end);
        histogram_merge(&dst->hist, &src->hist);
}

void engine_collect(const Engine *e, EngineResult *r) {
        result_add(r, &e->result);
}

void engine_snapshot(Engine *e, EngineResult *r) {
        pthread_mutex_lock(&e->lock);
        result_add(r, e->snapshot);
        pthread_mutex_unlock(&e->lock);
}
