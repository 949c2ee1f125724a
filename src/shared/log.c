/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "time-util.h"

static atomic_int log_max_level = LOG_NOTICE;
static bool log_to_journal;
static const char *log_ident = "";

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM=<dev>:<inode> names the stream systemd connected our stderr to. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_open(const char *ident) {
        log_ident = ident ? ident : "";
        log_to_journal = stderr_is_journal();
}

void log_set_max_level(int level) {
        atomic_store_explicit(&log_max_level, level, memory_order_relaxed);
}

int log_get_max_level(void) {
        return atomic_load_explicit(&log_max_level, memory_order_relaxed);
}

bool log_level_enabled(int level) {
        return level <= log_get_max_level();
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (int)i;
        if (strcmp(s, "err") == 0)
                return LOG_ERR;
        if (strcmp(s, "warn") == 0)
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t)level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

int log_internal(int level, int error, const char *format, ...) {
        char line[LOG_LINE_MAX];
        size_t n = 0;
        va_list ap;
        int k;

        if (log_to_journal)
                n = (size_t)snprintf(line, sizeof line, "<%d>", level);
        else {
                struct timespec ts;
                struct tm tm;

                (void)clock_gettime(CLOCK_REALTIME, &ts);
                (void)gmtime_r(&ts.tv_sec, &tm);
                n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
                n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s%s", ts.tv_nsec / 1000000,
                                      log_ident, *log_ident ? ": " : "");
                if (level <= LOG_WARNING)
                        n += (size_t)snprintf(line + n, sizeof line - n, "%s: ", level_names[level]);
        }

        va_start(ap, format);
        k = vsnprintf(line + n, sizeof line - n, format, ap);
        va_end(ap);
        if (k < 0)
                k = 0;
        n += (size_t)k;
        if (n >= sizeof line - 1) {
                n = sizeof line - 1;
                memcpy(line + n - 3, "...", 3);
        }
        line[n++] = '\n';

        /* One write per line; a short write to a full pipe is not worth retrying here. */
        (void)!write(STDERR_FILENO, line, n);

        errno = abs(error);
        return -abs(error);
}

bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed) {
        uint64_t next = atomic_load_explicit(&rl->next_usec, memory_order_relaxed);

        /* Whoever moves next_usec forward gets to log; everyone else counts. */
        if (now_usec < next || !atomic_compare_exchange_strong(&rl->next_usec, &next, now_usec + rl->interval_usec)) {
                atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
                return false;
        }
        *ret_suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
        return true;
}
