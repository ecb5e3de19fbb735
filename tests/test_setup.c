/*
** scripts/setup.sh against a stand-in apt-get (and sudo) first on PATH: every
** apt-get call asks apt to wait for the dpkg lock (DPkg::Lock::Timeout=600),
** an update refused because another process holds the lists lock is retried,
** and any other failure stops the script with apt-get's exit code.
*/
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"

static char g_dir[256]; /* the stand-ins, their log and counter */

/* Writes an executable shell script. */
static void write_script(const char *name, const char *text) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    write_text(path, text);
    assert_int_equal(chmod(path, 0755), 0);
}

/* Installs an apt-get whose first `locked` updates fail as if another process
   held the lists lock, and whose next update fails with `then_fail` (0: succeeds);
   every call is logged to DIR/log, one line of arguments each. */
static void fake_apt(int locked, int then_fail) {
    char text[1500];
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "echo \"$*\" >> '%s/log'\n"
             "case \" $* \" in *\" update \"*)\n"
             "  n=$(cat '%s/count' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '%s/count'\n"
             "  if [ $n -le %d ]; then\n"
             "    echo 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)' >&2; exit 100\n"
             "  fi\n"
             "  if [ %d -ne 0 ]; then echo 'E: Failed to fetch' >&2; exit %d; fi;;\n"
             "esac\n"
             "exit 0\n",
             g_dir, g_dir, g_dir, locked, then_fail, then_fail);
    write_script("apt-get", text);
    write_script("sudo", "#!/bin/sh\nexec \"$@\"\n");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -f '%s/log' '%s/count'", g_dir, g_dir);
    assert_int_equal(sh(cmd), 0);
}

/* Runs setup.sh with the stand-ins first on PATH; its exit code. */
static int run_setup(void) {
    const char *src = getenv("BNAS_SOURCE_DIR");
    assert_non_null(src);
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "PATH='%s':\"$PATH\" bash '%s/scripts/setup.sh' >'%s/out' 2>'%s/err'", g_dir, src, g_dir,
             g_dir);
    return sh(cmd);
}

/* Lines of the log, and how many contain `what`. */
static int log_lines(const char *what, int *with) {
    char path[400], line[1000];
    snprintf(path, sizeof path, "%s/log", g_dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    *with = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) n++, *with += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

static void test_waits_for_lock(void **state) {
    (void)state;
    fake_apt(1, 0);
    assert_int_equal(run_setup(), 0);
    int with, updates, installs;
    assert_int_equal(log_lines("-o DPkg::Lock::Timeout=600", &with), 3); /* update, update again, install */
    assert_int_equal(with, 3);
    log_lines(" update", &updates);
    log_lines(" install", &installs);
    assert_int_equal(updates, 2);
    assert_int_equal(installs, 1);
    char err[400];
    snprintf(err, sizeof err, "%s/err", g_dir);
    char *e = slurp(err, NULL);
    assert_non_null(e);
    assert_non_null(strstr(e, "another apt process holds the lock; waiting"));
    free(e);
}

static void test_other_failure_stops(void **state) {
    (void)state;
    fake_apt(0, 42);
    assert_int_equal(run_setup(), 42);
    int with;
    assert_int_equal(log_lines(" update", &with), 1); /* not retried, nothing installed */
}

static int setup(void **state) {
    (void)state;
    return tmpdir_make(g_dir, sizeof g_dir, "setup");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_remove(g_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_lock),
        cmocka_unit_test(test_other_failure_stops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
