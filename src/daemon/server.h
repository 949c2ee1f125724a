/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The main thread: raises RLIMIT_NOFILE, opens the listeners, starts the
 * workers, then waits on a signalfd (SIGTERM/SIGINT stop, SIGHUP reload) and a
 * timer that refreshes STATUS= and feeds the watchdog.
 */

#include "settings.h"

/* Takes ownership of settings (malloc'ed). Returns the process exit status. */
int server_run(const CommandLine *command_line, Settings *settings);
