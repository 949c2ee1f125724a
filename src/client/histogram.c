/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "histogram.h"

void histogram_init(Histogram *h) {
        memset(h, 0, sizeof *h);
        h->min = UINT64_MAX;
}

uint64_t histogram_bucket_low(unsigned i) {
        unsigned shift;

        if (i < 2 * HISTOGRAM_SUB_COUNT)
                return i;
        shift = i / HISTOGRAM_SUB_COUNT - 1;
        return (uint64_t)(i - shift * HISTOGRAM_SUB_COUNT) << shift;
}

uint64_t histogram_bucket_high(unsigned i) {
        unsigned shift;

        if (i < 2 * HISTOGRAM_SUB_COUNT)
                return i;
        shift = i / HISTOGRAM_SUB_COUNT - 1;
        return ((uint64_t)(i - shift * HISTOGRAM_SUB_COUNT + 1) << shift) - 1;
}

void histogram_merge(Histogram *dst, const Histogram *src) {
        if (src->count == 0)
                return;
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
                dst->buckets[i] += src->buckets[i];
        dst->count += src->count;
        dst->sum += src->sum;
        if (src->min < dst->min)
                dst->min = src->min;
        if (src->max > dst->max)
                dst->max = src->max;
}

uint64_t histogram_percentile(const Histogram *h, double p) {
        uint64_t ppm, rank, seen = 0;

        if (h->count == 0)
                return 0;
        if (!(p > 0))
                return h->min;
        if (p >= 100)
                return h->max;

        /* Parts per million in integers, so that 99.9% of 1000 samples is rank 999, not
         * 1000 by a rounding error; count * ppm fits 64 bits below 2^44 samples. */
        ppm = (uint64_t)(p * 10000.0 + 0.5);
        if (h->count < (UINT64_C(1) << 44))
                rank = (h->count * ppm + 999999) / 1000000;
        else {
                double x = (double)h->count * (double)ppm / 1e6;

                rank = (uint64_t)x;
                if ((double)rank < x)
                        rank++;
        }
        if (rank == 0)
                rank = 1;

        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
                seen += h->buckets[i];
                if (seen >= rank) {
                        uint64_t v = histogram_bucket_high(i);

                        return v < h->max ? v : h->max;
                }
        }
        return h->max;
}

uint64_t histogram_mean(const Histogram *h) {
        return h->count ? h->sum / h->count : 0;
}
