/* SPDX-License-Identifier: MIT */
#include "schedule.h"

#define NS_PER_SEC 1000000000ull

/*
 * Without overflow for any run: rate is at most 10^9 (args.c), so (j % rate) * 10^9
 * and (d % 10^9) * rate stay below 10^18; j / rate and d / 10^9 are seconds.
 */

uint64_t schedule_time(const Schedule *s, uint64_t i) {
        uint64_t j = s->id + i * s->n_threads;

        /* ceil(j * 10^9 / rate), so that the request is due when this says. */
        return s->t0 + j / s->rate * NS_PER_SEC + ((j % s->rate) * NS_PER_SEC + s->rate - 1) / s->rate;
}

uint64_t schedule_due(const Schedule *s, uint64_t now) {
        uint64_t t = s->end && now >= s->end ? s->end - 1 : now, d, last;

        if (t < s->t0)
                return 0;
        d = t - s->t0;
        /* The last global request due by t: floor(d * rate / 10^9). */
        last = d / NS_PER_SEC * s->rate + d % NS_PER_SEC * s->rate / NS_PER_SEC;
        if (last < s->id)
                return 0;
        return (last - s->id) / s->n_threads + 1;
}
