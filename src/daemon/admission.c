/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>

#include "admission.h"
#include "macro.h"

/* At most this many connections are told ERR busy at once; beyond, they are closed unanswered. */
#define MAX_REJECTING_CAP 256

int admission_limits(uint64_t requested, uint64_t fd_limit, uint64_t reserved, AdmissionLimits *ret) {
        uint64_t available = fd_limit > reserved ? fd_limit - reserved : 0;
        uint64_t rejecting = MIN(MAX(available / 16, 1), MAX_REJECTING_CAP);

        if (available < 2)
                return -EMFILE;
        *ret = (AdmissionLimits){
                .max_connections = MIN(requested, available - rejecting),
                .max_rejecting = rejecting,
        };
        return requested > ret->max_connections;
}

void admission_set_limits(Admission *a, const AdmissionLimits *l) {
        atomic_store(&a->max_rejecting, l->max_rejecting);
        atomic_store(&a->max_connections, l->max_connections);
}

/* Claims a slot in `counter` under `max`; gives it back if that made it overflow. */
static bool claim(_Atomic uint64_t *counter, const _Atomic uint64_t *max) {
        if (atomic_fetch_add_explicit(counter, 1, memory_order_relaxed) <
            atomic_load_explicit(max, memory_order_relaxed))
                return true;
        atomic_fetch_sub_explicit(counter, 1, memory_order_relaxed);
        return false;
}

AdmissionTicket admission_enter(Admission *a) {
        if (claim(&a->active, &a->max_connections))
                return ADMISSION_SERVE;
        if (claim(&a->rejecting, &a->max_rejecting))
                return ADMISSION_REJECT;
        return ADMISSION_REFUSE;
}

void admission_claim(Admission *a, AdmissionTicket t) {
        if (t == ADMISSION_SERVE)
                atomic_fetch_add_explicit(&a->active, 1, memory_order_relaxed);
        else if (t == ADMISSION_REJECT)
                atomic_fetch_add_explicit(&a->rejecting, 1, memory_order_relaxed);
}

void admission_leave(Admission *a, AdmissionTicket t) {
        if (t == ADMISSION_SERVE)
                atomic_fetch_sub_explicit(&a->active, 1, memory_order_relaxed);
        else if (t == ADMISSION_REJECT)
                atomic_fetch_sub_explicit(&a->rejecting, 1, memory_order_relaxed);
}
