/* SPDX-License-Identifier: MIT */
/* SIGHUP: read the configuration again, and give every worker the new settings for
 * the connections it accepts from then on. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "notify.h"
#include "server-internal.h"
#include "time-util.h"

#define RELOAD_WAIT_USEC (5 * USEC_PER_SEC) /* longest wait for the workers to reload */

static bool listen_lists_equal(const Settings *a, const Settings *b) {
        if (a->n_listen != b->n_listen)
                return false;
        for (size_t i = 0; i < a->n_listen; i++)
                if (!listen_address_equal(&a->listen[i], &b->listen[i]))
                        return false;
        return true;
}

/* Workers not yet serving new connections with settings generation *userdata. */
static int workers_lagging_generation(const Server *s, const void *userdata) {
        unsigned generation = *(const unsigned *)userdata;
        int lagging = 0;

        for (unsigned i = 0; i < s->n_workers; i++)
                if (atomic_load(&s->workers[i]->generation) != generation &&
                    !atomic_load(&s->workers[i]->exited))
                        lagging++;
        return lagging;
}

/* Sockets, threads and the user are fixed for the life of the process: say so. */
static void warn_fixed_settings(const Server *s, const Settings *n) {
        if (!s->listeners.activated && !listen_lists_equal(n, s->settings))
                log_warning("Reload: listener changes take effect only on restart");
        if (strcmp(n->user, s->settings->user) != 0)
                log_warning("Reload: a new user takes effect only on restart");
        if (!s->listeners.inetd && (n->threads > 0 ? n->threads : cpu_count()) != s->n_workers)
                log_warning("Reload: a new thread count takes effect only on restart");
}

/* Makes n the settings (taking it) and returns their generation. */
static unsigned publish_settings(Server *s, Settings *n) {
        Settings *old;
        unsigned generation;

        pthread_mutex_lock(&s->shared.lock);
        old = s->settings;
        s->settings = n;
        s->shared.settings = n;
        generation = ++s->shared.generation;
        pthread_mutex_unlock(&s->shared.lock);
        free(old);
        return generation;
}

void server_reload(Server *s) {
        char err[SETTINGS_ERROR_MAX];
        unsigned generation;
        Settings *n;
        int r;

        atomic_fetch_or(&s->health, HEALTH_RELOADING);
        notify_reloading();

        n = malloc(sizeof *n);
        if (!n) {
                log_error("Reload failed: out of memory");
                goto done;
        }
        r = settings_load(s->command_line, n, err, sizeof err);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", err);
                free(n);
                goto done;
        }
        warn_fixed_settings(s, n);
        log_set_max_level(n->log_level);
        generation = publish_settings(s, n);

        (void)server_apply_limits(s, true);
        for (unsigned i = 0; i < s->n_workers; i++)
                worker_signal(s->workers[i], WORKER_RELOAD);
        /* "Reloaded" and READY=1 must mean it: every connection accepted afterwards gets the
         * new settings, so wait for each worker to take them. */
        r = server_wait_workers(s, workers_lagging_generation, &generation,
                                now_usec(CLOCK_MONOTONIC) + RELOAD_WAIT_USEC);
        if (r > 0)
                log_warning("Reload: %d workers have not taken the new settings yet", r);
        server_log_settings(s, "Reloaded");

done:
        atomic_fetch_and(&s->health, ~(unsigned)HEALTH_RELOADING);
        notify_ready();
        server_status(s);
}
