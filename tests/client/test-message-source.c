/* SPDX-License-Identifier: MIT */
/*
 * Where ackc's messages come from, over a real pipe: the arguments in order;
 * lines without their LF (a CR kept, empty lines and an unterminated last line
 * included); a line split across writes waits for its end; the longest line
 * allowed passes and one byte more is refused, naming its line; a read error
 * comes back as it is; and a non-blocking descriptor is waited on, not spun on.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "message-source.h"

typedef struct Pipe {
        int r, w;
} Pipe;

static Pipe pipe_new(void) {
        int fds[2];

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        return (Pipe){ .r = fds[0], .w = fds[1] };
}

static void put(int fd, const char *s) {
        ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Writes buf from a child after delay_ms, so that more than a pipe holds can be sent,
 * and late; the write end is closed here. */
static pid_t put_from_child(Pipe *p, const char *buf, size_t len, unsigned delay_ms) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* check's SIGTERM handler, inherited, would forward reap()'s SIGTERM to the
                 * test's whole process group: the test itself would die of it. */
                (void)signal(SIGTERM, SIG_DFL);
                if (delay_ms > 0)
                        (void)nanosleep(&(struct timespec){ .tv_nsec = delay_ms * 1000000L }, NULL);
                for (size_t off = 0; off < len;) {
                        ssize_t n = write(p->w, buf + off, len - off);

                        if (n <= 0)
                                _exit(1);
                        off += (size_t)n;
                }
                _exit(0);
        }
        close(p->w);
        p->w = -1;
        return pid;
}

static void reap(pid_t pid) {
        int status;

        (void)kill(pid, SIGTERM);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

static void expect_message(MessageSource *s, const char *want, size_t want_len) {
        Message m;
        int r = message_source_next_blocking(s, &m);

        ck_assert_int_eq(r, 1);
        ck_assert_uint_eq(m.len, want_len);
        ck_assert(memcmp(m.data, want, want_len) == 0);
}

START_TEST(test_arguments_in_order) {
        const Message list[] = { { "one", 3 }, { "", 0 }, { "three", 5 } };
        MessageSource s;
        Message m;

        ck_assert_int_eq(message_source_init(&s, list, 3, -1), 0);
        ck_assert_int_eq(message_source_fd(&s), -1);
        expect_message(&s, "one", 3);
        expect_message(&s, "", 0);
        ck_assert(!message_source_exhausted(&s));
        expect_message(&s, "three", 5);
        ck_assert(message_source_exhausted(&s));
        ck_assert_int_eq(message_source_next(&s, &m), 0);
        message_source_done(&s);
}
END_TEST

START_TEST(test_lines_without_their_newline) {
        Pipe p = pipe_new();
        MessageSource s;
        Message m;

        ck_assert_int_eq(message_source_init(&s, NULL, 0, p.r), 0);
        ck_assert_int_eq(message_source_fd(&s), p.r);
        put(p.w, "one\ntwo\r\n\n\nlast");
        close(p.w);
        expect_message(&s, "one", 3);
        expect_message(&s, "two\r", 4); /* only the LF is the line's end */
        expect_message(&s, "", 0);
        expect_message(&s, "", 0);
        ck_assert(!message_source_exhausted(&s));
        expect_message(&s, "last", 4); /* unterminated, at EOF */
        ck_assert_int_eq(message_source_next_blocking(&s, &m), 0);
        ck_assert(message_source_exhausted(&s));
        ck_assert_int_eq(message_source_fd(&s), -1);
        ck_assert_uint_eq(s.lineno, 5);
        message_source_done(&s);
        close(p.r);
}
END_TEST

START_TEST(test_a_split_line_waits_for_its_end) {
        Pipe p = pipe_new();
        MessageSource s;
        Message m;

        ck_assert_int_eq(message_source_init(&s, NULL, 0, p.r), 0);
        ck_assert_int_eq(message_source_next(&s, &m), -EAGAIN);
        put(p.w, "hel");
        ck_assert_int_eq(message_source_fill(&s), 0);
        ck_assert_int_eq(message_source_next(&s, &m), -EAGAIN);
        put(p.w, "lo\nwor");
        ck_assert_int_eq(message_source_fill(&s), 0);
        ck_assert_int_eq(message_source_next(&s, &m), 1);
        ck_assert_uint_eq(m.len, 5);
        ck_assert(memcmp(m.data, "hello", 5) == 0);
        ck_assert_int_eq(message_source_next(&s, &m), -EAGAIN);
        put(p.w, "ld\n");
        close(p.w);
        expect_message(&s, "world", 5);
        ck_assert_int_eq(message_source_next_blocking(&s, &m), 0);
        message_source_done(&s);
        close(p.r);
}
END_TEST

START_TEST(test_the_longest_line_passes_and_one_more_byte_does_not) {
        Pipe p = pipe_new();
        MessageSource s;
        Message m;
        pid_t child;

        /* Line 1: exactly MESSAGE_LINE_MAX bytes; line 2: "ok"; line 3: one byte too many. */
        size_t len = MESSAGE_LINE_MAX + 4 + MESSAGE_LINE_MAX + 2;
        char *buf = malloc(len);

        ck_assert_ptr_nonnull(buf);
        memset(buf, 'x', MESSAGE_LINE_MAX);
        memcpy(buf + MESSAGE_LINE_MAX, "\nok\n", 4);
        memset(buf + MESSAGE_LINE_MAX + 4, 'y', MESSAGE_LINE_MAX + 1);
        buf[len - 1] = '\n';
        ck_assert_int_eq(message_source_init(&s, NULL, 0, p.r), 0);
        child = put_from_child(&p, buf, len, 0);

        ck_assert_int_eq(message_source_next_blocking(&s, &m), 1);
        ck_assert_uint_eq(m.len, MESSAGE_LINE_MAX);
        ck_assert(m.data[0] == 'x' && m.data[m.len - 1] == 'x');
        expect_message(&s, "ok", 2);
        ck_assert_int_eq(message_source_next_blocking(&s, &m), -E2BIG);
        ck_assert_uint_eq(s.lineno + 1, 3); /* the line that is too long */
        message_source_done(&s);
        close(p.r);
        reap(child);
        free(buf);
}
END_TEST

START_TEST(test_a_read_error_is_returned) {
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        MessageSource s;
        Message m;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(message_source_init(&s, NULL, 0, fd), 0);
        ck_assert_int_eq(message_source_next_blocking(&s, &m), -EISDIR);
        message_source_done(&s);
        close(fd);
}
END_TEST

static double cpu_seconds(void) {
        struct rusage ru;

        ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
}

/* Someone left the descriptor non-blocking: a line 300 ms late costs no CPU while waited for. */
START_TEST(test_a_non_blocking_descriptor_is_waited_on) {
        Pipe p = pipe_new();
        MessageSource s;
        pid_t child;
        double before;

        ck_assert_int_eq(fcntl(p.r, F_SETFL, O_NONBLOCK), 0);
        ck_assert_int_eq(message_source_init(&s, NULL, 0, p.r), 0);
        child = put_from_child(&p, "zzz\n", 4, 300);
        before = cpu_seconds();
        expect_message(&s, "zzz", 3);
        ck_assert_double_lt(cpu_seconds() - before, 0.1);
        message_source_done(&s);
        close(p.r);
        reap(child);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("message-source");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_arguments_in_order);
        tcase_add_test(tc, test_lines_without_their_newline);
        tcase_add_test(tc, test_a_split_line_waits_for_its_end);
        tcase_add_test(tc, test_the_longest_line_passes_and_one_more_byte_does_not);
        tcase_add_test(tc, test_a_read_error_is_returned);
        tcase_add_test(tc, test_a_non_blocking_descriptor_is_waited_on);
        suite_add_tcase(s, tc);
        return s;
}
