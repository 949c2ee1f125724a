/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "time-util.h"

/* How a line reaches standard error without ever waiting (see log.h). */
typedef enum LogSink {
        LOG_SINK_WRITE,   /* write(2) to fd 2: a regular file, /dev/null, or no log_open() */
        LOG_SINK_SEND,    /* send(2) with MSG_DONTWAIT on fd 2: a socket, such as the journal's */
        LOG_SINK_PRIVATE, /* write(2) to log_fd, fd 2 reopened non-blocking: a pipe, FIFO or tty */
} LogSink;

/* A line, with the byte before it, is written at once or not at all to a pipe. */
_Static_assert(LOG_LINE_MAX + 1 <= PIPE_BUF, "a log line must fit in one atomic pipe write");

static atomic_int log_max_level = LOG_NOTICE;
static bool log_to_journal;
static const char *log_ident = "";
static LogSink log_sink = LOG_SINK_WRITE;
static int log_fd = STDERR_FILENO;
static atomic_ullong log_dropped; /* lines not written since the last report */
static atomic_bool log_torn;      /* the last write ended mid-line */

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
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

/* Picks the sink for what fd 2 is. fd 2 itself stays as it is: its file description
 * may be shared with a shell or a terminal, and sanitizers write reports to it. */
static void log_sink_open(void) {
        struct stat st;
        int fd;

        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        if (S_ISSOCK(st.st_mode)) {
                log_sink = LOG_SINK_SEND;
                return;
        }
        /* A regular file is never reopened: the new description would have its own
         * offset and no O_APPEND. Other character devices (/dev/null) do not block. */
        if (!S_ISFIFO(st.st_mode) && !isatty(STDERR_FILENO))
                return;
        fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                log_warning_errno(errno,
                                  "Cannot reopen standard error non-blocking (%s): a reader that "
                                  "stops reading will stall ackd",
                                  STRERROR(errno));
                return;
        }
        log_fd = fd;
        log_sink = LOG_SINK_PRIVATE;
}

void log_open(const char *ident) {
        log_ident = ident ? ident : "";
        log_to_journal = stderr_is_journal();
        if (log_sink == LOG_SINK_WRITE)
                log_sink_open();
}

int log_get_fd(void) {
        return log_fd;
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

/* The timestamp or priority, ident and level marker every line starts with. */
static size_t log_prefix(char *line, size_t size, int level) {
        struct timespec ts;
        struct tm tm;
        size_t n;

        if (log_to_journal)
                return (size_t)snprintf(line, size, "<%d>", level);

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, size, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, size - n, ".%03ldZ %s%s", ts.tv_nsec / 1000000, log_ident,
                              *log_ident ? ": " : "");
        if (level <= LOG_WARNING)
                n += (size_t)snprintf(line + n, size - n, "%s: ", level_names[level]);
        return n;
}

static ssize_t log_sink_write(const char *p, size_t n) {
        ssize_t k;

        do
                k = log_sink == LOG_SINK_SEND ? send(log_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                                              : write(log_fd, p, n);
        while (k < 0 && errno == EINTR);
        return k;
}

/*
 * Writes the n-byte line at buf + 1 in one call; buf[0] is room for a newline that ends
 * a line an earlier short write left unfinished (a tty or TCP socket may take part of a
 * line; a pipe or the journal's socket takes all or nothing). True if all of it went.
 */
static bool log_write_line(char *buf, size_t n) {
        bool torn =
                atomic_load_explicit(&log_torn, memory_order_relaxed) && atomic_exchange(&log_torn, false);
        size_t len = n + torn, written;
        ssize_t k;

        buf[0] = '\n';
        k = log_sink_write(buf + !torn, len);
        written = k > 0 ? (size_t)k : 0;
        /* Still mid-line unless all of it went, or nothing of this line did. */
        if (written < len && written != (size_t)torn)
                atomic_store(&log_torn, true);
        return written == len;
}

/* Says how many lines were lost before the line that is about to go out. */
static bool log_report_dropped(unsigned long long dropped) {
        char buf[1 + LOG_LINE_MAX];
        size_t n = log_prefix(buf + 1, sizeof buf - 1, LOG_WARNING);

        n += (size_t)snprintf(buf + 1 + n, sizeof buf - 1 - n,
                              "%llu log %s dropped: standard error was not "
                              "taking them\n",
                              dropped, dropped == 1 ? "line" : "lines");
        return log_write_line(buf, n);
}

/* Never waits: a line stderr cannot take now is counted, and the count is reported
 * first thing once a line gets through again. */
static void log_emit(char *buf, size_t n) {
        unsigned long long dropped = atomic_load_explicit(&log_dropped, memory_order_relaxed);

        if (dropped > 0) {
                dropped = atomic_exchange(&log_dropped, 0);
                if (dropped > 0 && !log_report_dropped(dropped)) {
                        atomic_fetch_add(&log_dropped, dropped + 1);
                        return;
                }
        }
        if (!log_write_line(buf, n))
                atomic_fetch_add(&log_dropped, 1);
}

int log_internal(int level, int error, const char *format, ...) {
        char buf[1 + LOG_LINE_MAX];
        char *line = buf + 1;
        size_t n;
        va_list ap;
        int k;

        n = log_prefix(line, LOG_LINE_MAX, level);
        va_start(ap, format);
        k = vsnprintf(line + n, LOG_LINE_MAX - n, format, ap);
        va_end(ap);
        if (k < 0)
                k = 0;
        n += (size_t)k;
        if (n >= LOG_LINE_MAX - 1) {
                n = LOG_LINE_MAX - 1;
                memcpy(line + n - 3, "...", 3);
        }
        line[n++] = '\n';

        log_emit(buf, n);

        errno = abs(error);
        return -abs(error);
}

bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed) {
        uint64_t next = atomic_load_explicit(&rl->next_usec, memory_order_relaxed);

        /* Whoever moves next_usec forward gets to log; everyone else counts. */
        if (now_usec < next ||
            !atomic_compare_exchange_strong(&rl->next_usec, &next, now_usec + rl->interval_usec)) {
                atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
                return false;
        }
        *ret_suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
        return true;
}
