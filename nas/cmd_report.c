/* `bnas report`: the HTML report of a study (nas/report.h). */
#include <stdio.h>
#include <string.h>

#include "engine/err.h"
#include "nas/commands.h"
#include "nas/report.h"

int cmd_report(int argc, char **argv) {
    static const char *help =
        "usage: bnas report DB [MORE_DB...] -o FILE.html\n"
        "Writes one self-contained HTML page (inline SVG, no scripts, no network)\n"
        "about study DB: its state, the Pareto front (each pair of objectives, the\n"
        "third as colour), the hypervolume over trials, accuracy over bit error\n"
        "rate of the front's models, every trial and the frozen spec. MORE_DB are\n"
        "further studies (e.g. the same spec with other strategies) whose\n"
        "hypervolume curves are drawn in the same chart.\n";
    const char *out = NULL;
    const char *dbs[64];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return 0;
        }
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-' || n == 64) {
            fprintf(stderr, "bnas report: unexpected argument '%s'\n%s", argv[i], help);
            return 2;
        } else dbs[n++] = argv[i];
    }
    if (!n || !out) {
        fputs(help, stderr);
        return 2;
    }
    report_info info;
    if (report_write(dbs[0], dbs + 1, n - 1, out, &info)) {
        fprintf(stderr, "bnas report: %s\n", bn_errmsg());
        return 1;
    }
    fprintf(stderr, "%s: %d trials (%d complete, %d pending), front %d, %zu bytes%s\n", out, info.trials,
            info.complete, info.pending, info.front, info.bytes,
            info.trials == 0 ? "; the study is empty"
                             : info.unfinished ? "; the study is unfinished" : "");
    return 0;
}
