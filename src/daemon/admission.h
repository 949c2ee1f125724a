/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Admission control, shared by every worker: how many connections are served
 * at once (max-connections, capped so that they fit under RLIMIT_NOFILE), and
 * how many beyond that are being told "ERR busy". Lock-free: entering claims a
 * slot with one atomic add and gives it back if over the limit, so the count
 * can never exceed the limit, whichever worker gets there first.
 */

#include <stdatomic.h>
#include <stdint.h>

typedef enum AdmissionTicket {
        ADMISSION_SERVE,  /* counted in active */
        ADMISSION_REJECT, /* over the limit: answer ERR busy; counted in rejecting */
        ADMISSION_REFUSE, /* over even the ERR busy allowance: counted nowhere, close now */
} AdmissionTicket;

typedef struct Admission {
        _Atomic uint64_t max_connections; /* effective limit */
        _Atomic uint64_t max_rejecting;   /* connections being told ERR busy at once */
        _Atomic uint64_t active;
        _Atomic uint64_t rejecting;
} Admission;

/* fds the process needs besides connections: stdio, signalfd, timerfd, the eventfds,
 * the journal and notify sockets, a config file being read, and slack for libc. */
#define ADMISSION_FD_RESERVE_BASE 16

typedef struct AdmissionLimits {
        uint64_t max_connections;
        uint64_t max_rejecting;
} AdmissionLimits;

/*
 * The limits that fit `requested` connections under fd_limit, when `reserved`
 * further fds are spoken for: admitted connections plus those being told ERR busy
 * always fit, so EMFILE only happens if something else eats fds. Returns 1 if
 * the request was capped, 0 if not, -EMFILE if the limit is too low to serve
 * anything. Pure: a unit test checks the arithmetic.
 */
int admission_limits(uint64_t requested, uint64_t fd_limit, uint64_t reserved, AdmissionLimits *ret);

void admission_set_limits(Admission *a, const AdmissionLimits *l);

AdmissionTicket admission_enter(Admission *a);

/* Counts a connection under t whatever the limits: one admitted before a restart. */
void admission_claim(Admission *a, AdmissionTicket t);

/* Gives back what admission_enter() or admission_claim() claimed (nothing for
 * ADMISSION_REFUSE). */
void admission_leave(Admission *a, AdmissionTicket t);

static inline uint64_t admission_active(const Admission *a) {
        return atomic_load_explicit(&a->active, memory_order_relaxed);
}

static inline uint64_t admission_max_connections(const Admission *a) {
        return atomic_load_explicit(&a->max_connections, memory_order_relaxed);
}
