/* SPDX-License-Identifier: MIT */
#include <cap-ng.h>
#include <errno.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "privileges.h"

int privileges_lookup_user(const char *user, uid_t *ret_uid, gid_t *ret_gid) {
        struct passwd *pw;

        errno = 0;
        pw = getpwnam(user);
        if (!pw)
                return errno > 0 ? -errno : -ESRCH;
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

int privileges_check(const char *user, bool allow_root) {
        uid_t uid;
        gid_t gid;
        int r;

        if (!*user) {
                if (geteuid() == 0 && !allow_root)
                        return log_error_errno(EPERM,
                                               "Refusing to serve as root: use --user NAME to drop "
                                               "privileges once the sockets are open, or --allow-root");
                return 0;
        }

        r = privileges_lookup_user(user, &uid, &gid);
        if (r < 0)
                return log_error_errno(EPERM, "--user %s: %s", user,
                                       r == -ESRCH ? "no such user" : STRERROR(r));
        if (uid == 0)
                return log_error_errno(EPERM, "--user %s: that is root; use --allow-root to serve as root",
                                       user);
        if (geteuid() != 0 && geteuid() != uid)
                return log_error_errno(EPERM, "--user %s: only root can switch users", user);
        return 0;
}

int privileges_drop(const char *user) {
        uid_t uid;
        gid_t gid;
        int r;

        if (!*user || geteuid() != 0)
                return 0;
        r = privileges_lookup_user(user, &uid, &gid);
        if (r < 0)
                return log_error_errno(r, "Failed to look up user %s: %s", user,
                                       r == -ESRCH ? "no such user" : STRERROR(r));

        /* No capabilities in any set, the bounding set cleared, supplementary groups
         * dropped, then the uid/gid change (libcap-ng keeps the order safe). */
        capng_clear(CAPNG_SELECT_BOTH);
        r = capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
        if (r < 0)
                return log_error_errno(EPERM, "Failed to switch to user %s (libcap-ng error %d)", user, r);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(errno, "Failed to set no_new_privs: %s", STRERROR(errno));

        /* Trust, but verify: there must be no way back. */
        if (setuid(0) == 0 || geteuid() == 0 || capng_have_capabilities(CAPNG_SELECT_BOTH) != CAPNG_NONE)
                return log_error_errno(EPERM, "Privileges are still held after switching to %s", user);

        log_notice("Running as user %s (uid %u, gid %u) without capabilities", user, (unsigned)uid,
                   (unsigned)gid);
        return 0;
}
