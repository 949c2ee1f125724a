/* SPDX-License-Identifier: MIT */
/*
 * The main() every unit suite shares: run the suite that the test file's
 * make_suite() builds, each case in its own forked process, and report in TAP.
 */
#include <check.h>
#include <stdlib.h>

Suite *make_suite(void);

int main(void) {
        SRunner *sr = srunner_create(make_suite());
        int failed;

        srunner_set_tap(sr, "-");
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
