/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The bench report, as text for people or as one JSON object for scripts. Both
 * come from the same numbers; the JSON keys are stable (ackc(1) documents them).
 * Pure: formatting only, so it is unit-tested.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "engine.h"

typedef struct BenchReport {
        const ClientArgs *args;
        const char *target;  /* the address connected to */
        uint64_t elapsed_ns; /* from the start to the last engine's end */
        bool interrupted;
        const EngineResult *result;
} BenchReport;

uint64_t report_errors_total(const EngineResult *r);

/* Verified replies per second; 0 when nothing was verified. */
double report_throughput(const BenchReport *b);

/* "850ns", "12.3us", "4.56ms", "1.23s" */
const char *report_format_ns(char *buf, size_t size, uint64_t ns);

void report_text(FILE *f, const BenchReport *b);
void report_json(FILE *f, const BenchReport *b);
