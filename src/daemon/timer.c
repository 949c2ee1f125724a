/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "timer.h"

void timer_queue_init(TimerQueue *q, uint64_t duration_ms) {
        q->head.prev = q->head.next = &q->head;
        q->head.deadline = UINT64_MAX;
        q->duration = duration_ms;
        q->n_entries = 0;
}

void timer_queue_add(TimerQueue *q, TimerEntry *e, uint64_t now) {
        TimerEntry *tail = q->head.prev;

        assert(!timer_entry_armed(e));
        /* Keep the queue ordered even if a caller's clock reading lags the tail's. */
        e->deadline = now + q->duration;
        if (tail != &q->head && e->deadline < tail->deadline)
                e->deadline = tail->deadline;

        e->prev = tail;
        e->next = &q->head;
        tail->next = e;
        q->head.prev = e;
        q->n_entries++;
}

void timer_queue_remove(TimerQueue *q, TimerEntry *e) {
        assert(timer_entry_armed(e));
        assert(q->n_entries > 0);

        e->prev->next = e->next;
        e->next->prev = e->prev;
        e->prev = e->next = NULL;
        q->n_entries--;
}

void timer_queue_set_deadline(TimerQueue *q, TimerEntry *e, uint64_t deadline) {
        assert(q->head.prev == e);
        if (e->prev != &q->head && deadline < e->prev->deadline)
                deadline = e->prev->deadline;
        e->deadline = deadline;
}

void timer_queue_rearm(TimerQueue *q, TimerEntry *e, uint64_t now) {
        /* Already the newest and the clock has not moved: nothing to do (the common case
         * for a busy connection, which is re-armed on every read). */
        if (q->head.prev == e && e->deadline == now + q->duration)
                return;
        timer_queue_remove(q, e);
        timer_queue_add(q, e, now);
}

TimerEntry *timer_queue_peek_expired(const TimerQueue *q, uint64_t now) {
        TimerEntry *e = q->head.next;

        return e != &q->head && e->deadline <= now ? e : NULL;
}

uint64_t timer_queue_next_deadline(const TimerQueue *q) {
        return q->head.next->deadline; /* the sentinel holds UINT64_MAX */
}

TimerEntry *timer_queue_first(const TimerQueue *q) {
        return q->head.next != &q->head ? q->head.next : NULL;
}

TimerEntry *timer_queue_next(const TimerQueue *q, const TimerEntry *e) {
        return e->next != &q->head ? e->next : NULL;
}
