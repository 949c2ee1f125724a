/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "privileges.h"
#include "server.h"
#include "settings.h"

#define EXIT_USAGE 2

int main(int argc, char *argv[]) {
        _cleanup_(command_line_done) CommandLine command_line = { 0 };
        char err[SETTINGS_ERROR_MAX];
        Settings *settings;
        int r;

        log_open(NULL);

        r = command_line_parse(argc, argv, &command_line, err, sizeof err);
        if (r == -ENOMEM) {
                fprintf(stderr, "ackd: out of memory\n");
                return EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "ackd: %s\nTry 'ackd --help' for more information.\n", err);
                return EXIT_USAGE;
        }
        if (command_line.help) {
                settings_help(stdout, "ackd");
                return EXIT_SUCCESS;
        }
        if (command_line.version) {
                printf("ackd %s (%ssystemd)\n", PACKAGE_VERSION, HAVE_SYSTEMD ? "+" : "-");
                return EXIT_SUCCESS;
        }

        settings = malloc(sizeof *settings);
        if (!settings) {
                fprintf(stderr, "ackd: out of memory\n");
                return EXIT_FAILURE;
        }
        r = settings_load(&command_line, settings, err, sizeof err);
        if (r < 0) {
                /* A bad value or an unreadable --config file: a usage error, never a silent default. */
                log_error("%s", err);
                free(settings);
                return EXIT_USAGE;
        }
        log_set_max_level(settings->log_level);

        if (privileges_check(settings->user, command_line.allow_root) < 0) {
                free(settings);
                return EXIT_USAGE;
        }

        return server_run(&command_line, settings);
}
