/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A log-linear latency histogram of fixed size (HdrHistogram's idea, our own
 * layout). Values are nanoseconds.
 *
 *   - below 2^(SUB_BITS+1) (256 ns) every value has its own bucket: exact;
 *   - above, each power of two [2^k, 2^(k+1)) is split into 2^SUB_BITS equal
 *     buckets, so a bucket is at most 1/128 (0.8 %) of its values wide;
 *   - values above HISTOGRAM_MAX (2^42 - 1 ns, about 73 minutes) land in the
 *     last bucket; min and max are kept exactly anyway.
 *
 * 4608 buckets, 36 KiB, whatever is recorded. Recording is a count increment
 * (no allocation, no floating point), so the hot path can record every reply.
 *
 * A percentile is the highest value of the bucket that holds the
 * ceil(p% * count)-th smallest sample (never an underestimate), capped by the
 * exact maximum: exact below 256 ns and for values at a bucket's top.
 */

#include <stdint.h>

#define HISTOGRAM_SUB_BITS  7
#define HISTOGRAM_SUB_COUNT (1u << HISTOGRAM_SUB_BITS)
#define HISTOGRAM_MAX_BITS  42
#define HISTOGRAM_MAX       ((UINT64_C(1) << HISTOGRAM_MAX_BITS) - 1)
#define HISTOGRAM_BUCKETS   ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) * HISTOGRAM_SUB_COUNT)

typedef struct Histogram {
        uint64_t count;
        uint64_t sum; /* for the mean; 2^64 ns is 584 years of latency */
        uint64_t min; /* UINT64_MAX while empty */
        uint64_t max;
        uint64_t buckets[HISTOGRAM_BUCKETS];
} Histogram;

void histogram_init(Histogram *h);

static inline unsigned histogram_index(uint64_t v) {
        unsigned shift;

        if (v > HISTOGRAM_MAX)
                v = HISTOGRAM_MAX;
        if (v < 2 * HISTOGRAM_SUB_COUNT)
                return (unsigned)v;
        /* v = m << shift with m in [SUB_COUNT, 2 * SUB_COUNT): the top SUB_BITS+1 bits. */
        shift = (unsigned)(63 - __builtin_clzll(v)) - HISTOGRAM_SUB_BITS;
        return shift * HISTOGRAM_SUB_COUNT + (unsigned)(v >> shift);
}

/* The smallest and largest value that land in bucket i. */
uint64_t histogram_bucket_low(unsigned i);
uint64_t histogram_bucket_high(unsigned i);

/* n samples of value v. */
static inline void histogram_record_n(Histogram *h, uint64_t v, uint64_t n) {
        h->buckets[histogram_index(v)] += n;
        h->count += n;
        h->sum += v * n;
        if (v < h->min)
                h->min = v;
        if (v > h->max)
                h->max = v;
}

static inline void histogram_record(Histogram *h, uint64_t v) {
        histogram_record_n(h, v, 1);
}

void histogram_merge(Histogram *dst, const Histogram *src);

/* The p-th percentile, p in [0, 100] (0 gives the minimum, 100 the maximum). 0 when empty. */
uint64_t histogram_percentile(const Histogram *h, double p);

/* The mean, rounded down. 0 when empty. */
uint64_t histogram_mean(const Histogram *h);
