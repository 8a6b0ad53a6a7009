/* mini_criterion.c — the runner of rel_criterion.h's stand-in (TSan build,
 * aarch64 pass): each test runs with its suite's init/fini in this process and is
 * reported as a TAP line; exit status 1 when any failed. */
#define REL_MINI_CRITERION 1
#include "rel_criterion.h"

#include <fnmatch.h>
#include <string.h>

struct mc_test *mc_tests;
int mc_failed;
jmp_buf mc_abort;

void mc_check(int ok, int fatal, const char *expr, const char *file, int line,
              const char *fmt, ...)
{
    if (ok)
        return;
    mc_failed = 1;
    fprintf(stderr, "%s:%d: Assertion failed: %s", file, line, expr);
    if (fmt[1]) { /* the macros prefix the message with a space */
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    if (fatal)
        longjmp(mc_abort, 1);
}

/* --filter=GLOB (as Criterion's) runs only the tests whose "suite/name"
 * matches; --exclude=GLOB (stand-in only, up to 8) leaves the matching ones out. */
#define MC_MAX_EXCLUDE 8
static const char *mc_filter, *mc_exclude[MC_MAX_EXCLUDE];

static int selected(const struct mc_test *t)
{
    char id[256];
    snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
    if (mc_filter && fnmatch(mc_filter, id, 0) != 0)
        return 0;
    for (int i = 0; i < MC_MAX_EXCLUDE && mc_exclude[i]; i++)
        if (fnmatch(mc_exclude[i], id, 0) == 0)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    /* Criterion's other options (--tap=..., --ascii) are accepted and ignored */
    int n_exclude = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--filter=", 9))
            mc_filter = argv[i] + 9;
        else if (!strncmp(argv[i], "--exclude=", 10) && n_exclude < MC_MAX_EXCLUDE)
            mc_exclude[n_exclude++] = argv[i] + 10;
    }
    int n = 0;
    volatile int bad = 0;
    for (struct mc_test *t = mc_tests; t; t = t->next)
        n += selected(t);
    printf("TAP version 13\n1..%d\n", n);
    fflush(stdout);
    for (struct mc_test *t = mc_tests; t; t = t->next) {
        if (!selected(t))
            continue;
        mc_failed = 0;
        if (!setjmp(mc_abort)) {
            if (t->opts && t->opts->init)
                t->opts->init();
            t->fn();
        }
        if (t->opts && t->opts->fini)
            t->opts->fini();
        printf("%s - %s::%s\n", mc_failed ? "not ok" : "ok", t->suite, t->name);
        fflush(stdout);
        bad += mc_failed;
    }
    return bad ? 1 : 0;
}
