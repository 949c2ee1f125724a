/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "privileges.h"
#include "socket-cleanup.h"

/* Whether uid:gid, without supplementary groups (ackd drops them), has all of want
 * (an rwx triple, as in S_IRWXO) on st. ACLs are not read: where one grants more, a
 * helper is started that was not needed, which is harmless. */
static bool permits(const struct stat *st, uid_t uid, gid_t gid, mode_t want) {
        mode_t bits = st->st_uid == uid   ? st->st_mode >> 6
                      : st->st_gid == gid ? st->st_mode >> 3
                                          : st->st_mode;

        return (bits & want) == want;
}

/* Whether uid:gid could unlink the root-owned file at the absolute path: search on
 * every directory above it, write on its own, and owning that one if it is sticky. */
static bool user_can_unlink(const char *path, uid_t uid, gid_t gid) {
        char dir[PATH_MAX];
        mode_t want = S_IWOTH | S_IXOTH;
        struct stat st;
        char *slash;

        if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
                return false;
        while ((slash = strrchr(dir, '/'))) {
                slash[slash == dir] = '\0'; /* "/run/x.sock" -> "/run" -> "/" */
                if (stat(dir, &st) < 0 || !permits(&st, uid, gid, want))
                        return false;
                if (want & S_IWOTH && st.st_mode & S_ISVTX && st.st_uid != uid)
                        return false;
                if (slash == dir)
                        return true;
                want = S_IXOTH;
        }
        return false;
}

/* Closes every descriptor above 2 but keep and the log's: the helper must not hold a
 * listener open after ackd has gone. */
static void close_all_but(int keep) {
        int a = MIN(keep, log_get_fd()), b = MAX(keep, log_get_fd());
        int after_a = MAX(a, 2) + 1; /* a is 2 when the log writes to stderr itself */

        if (a > 3)
                (void)close_range(3, (unsigned)a - 1, 0);
        if (b > after_a)
                (void)close_range((unsigned)after_a, (unsigned)b - 1, 0);
        (void)close_range((unsigned)b + 1, ~0U, 0);
}

static _Noreturn void helper_run(int pipe_fd, const ListenerSet *set, bool *owned) {
        const struct sigaction ignore = { .sa_handler = SIG_IGN };
        char c;

        (void)sigaction(SIGTERM, &ignore, NULL);
        (void)sigaction(SIGINT, &ignore, NULL);
        (void)sigaction(SIGHUP, &ignore, NULL);
        (void)prctl(PR_SET_NAME, "ackd-cleanup");
        close_all_but(pipe_fd);

        /* Returns when ackd has exited: nobody else holds the write end. */
        while (read(pipe_fd, &c, 1) < 0 && errno == EINTR)
                ;
        for (size_t i = 0; i < set->n_items; i++)
                if (owned[i])
                        (void)listener_remove_socket_file(set->items[i].unlink_path,
                                                          set->items[i].unlink_dev,
                                                          set->items[i].unlink_ino);
        free(owned); /* the rest is the parent's, still reachable */
        _exit(EXIT_SUCCESS);
}

void socket_cleanup_start(ListenerSet *set, const char *user) {
        _cleanup_(freep) bool *owned = NULL;
        size_t n_owned = 0;
        int fds[2];
        uid_t uid;
        gid_t gid;
        pid_t pid;

        if (!*user || geteuid() != 0 || set->n_items == 0 || privileges_lookup_user(user, &uid, &gid) < 0)
                return;
        owned = calloc(set->n_items, sizeof *owned);
        if (!owned) {
                log_warning("Out of memory: socket files that user %s cannot remove will be left at exit",
                            user);
                return;
        }
        for (size_t i = 0; i < set->n_items; i++) {
                owned[i] =
                        set->items[i].unlink_path && !user_can_unlink(set->items[i].unlink_path, uid, gid);
                n_owned += owned[i];
        }
        if (n_owned == 0)
                return;

        /* Forked before the workers exist: the process is single-threaded still. */
        if (pipe2(fds, O_CLOEXEC) < 0) {
                log_warning_errno(errno, "Cannot start the helper that removes socket files at exit: %s",
                                  STRERROR(errno));
                return;
        }
        pid = fork();
        if (pid < 0) {
                log_warning_errno(errno, "Cannot start the helper that removes socket files at exit: %s",
                                  STRERROR(errno));
                safe_close(fds[0]);
                safe_close(fds[1]);
                return;
        }
        if (pid == 0) {
                (void)close(fds[1]);
                helper_run(fds[0], set, owned);
        }
        /* fds[1] stays open, unused, until ackd exits. */
        (void)close(fds[0]);
        for (size_t i = 0; i < set->n_items; i++)
                if (owned[i])
                        set->items[i].unlink_path = mfree(set->items[i].unlink_path);
        log_debug("Started helper %d to remove %zu socket files at exit", (int)pid, n_owned);
}
