/* SPDX-License-Identifier: MIT */
/*
 * ackc: checks that an ackd endpoint acknowledges (send), and load-tests it
 * (bench). "ackc bench ..." selects the load generator; anything else sends.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "config.h"
#include "send.h"

int main(int argc, char *argv[]) {
        Command command = COMMAND_SEND;
        char err[ARGS_ERROR_MAX];
        ClientArgs args;
        int r;

        /* A server that closes early must show up as an error, not kill us. */
        (void)signal(SIGPIPE, SIG_IGN);

        /* Only as the first argument, so "ackc -- bench" still sends "bench". */
        if (argc > 1 && strcmp(argv[1], "bench") == 0) {
                command = COMMAND_BENCH;
                argc--;
                argv++;
        }

        r = args_parse(command, argc, argv, &args, err, sizeof err);
        if (r == -ENOMEM) {
                fprintf(stderr, "ackc: out of memory\n");
                args_done(&args);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "ackc: %s\nTry 'ackc%s --help' for more information.\n", err,
                        command == COMMAND_BENCH ? " bench" : "");
                args_done(&args);
                return EXIT_USAGE;
        }

        if (args.help)
                args_help(stdout, command);
        else if (args.version)
                printf("ackc %s\n", PACKAGE_VERSION);
        else if (command == COMMAND_BENCH)
                r = bench_run(&args);
        else
                r = send_run(&args);

        args_done(&args);
        return args.help || args.version ? EXIT_SUCCESS : r;
}
