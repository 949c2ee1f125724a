/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * O(1) timeouts: one FIFO queue per timeout duration. Every entry in a queue
 * was armed with the same duration from a clock that never goes back, so the
 * queue is ordered by deadline without sorting: arming appends at the tail,
 * re-arming moves an entry to the tail, and only the head can be due. A worker
 * has a queue for its idle timeout (one per live settings generation) and one
 * for lingering closes.
 *
 * Entries are intrusive (embedded in the connection) and the list is circular
 * around a sentinel, so no operation allocates or branches on emptiness.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct TimerEntry {
        struct TimerEntry *prev, *next; /* NULL when not armed */
        uint64_t deadline;              /* monotonic milliseconds */
} TimerEntry;

typedef struct TimerQueue {
        TimerEntry head;   /* sentinel */
        uint64_t duration; /* milliseconds */
        size_t n_entries;
} TimerQueue;

void timer_queue_init(TimerQueue *q, uint64_t duration_ms);

static inline bool timer_entry_armed(const TimerEntry *e) {
        return e->next != NULL;
}

static inline bool timer_queue_empty(const TimerQueue *q) {
        return q->head.next == &q->head;
}

/* Arms e (not armed) to fire at now + duration. */
void timer_queue_add(TimerQueue *q, TimerEntry *e, uint64_t now);

/* Disarms e, which must be armed in q. */
void timer_queue_remove(TimerQueue *q, TimerEntry *e);

/* Moves the deadline of e, the tail of q, to `deadline`, but never before the deadline
 * of the entry ahead of it: the queue stays ordered. (A restored timer with less than
 * the whole duration left.) */
void timer_queue_set_deadline(TimerQueue *q, TimerEntry *e, uint64_t deadline);

/* Pushes e's deadline to now + duration. */
void timer_queue_rearm(TimerQueue *q, TimerEntry *e, uint64_t now);

/* The entry due at or before now, or NULL. Does not remove it. */
TimerEntry *timer_queue_peek_expired(const TimerQueue *q, uint64_t now);

/* The earliest deadline, or UINT64_MAX when empty. */
uint64_t timer_queue_next_deadline(const TimerQueue *q);

/* First and next entry, for walking every armed entry (e.g. to stop them all). */
TimerEntry *timer_queue_first(const TimerQueue *q);
TimerEntry *timer_queue_next(const TimerQueue *q, const TimerEntry *e);
