/* The bnas command line: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "nas/cmd_engine.h"

static const char *usage =
    "usage: bnas COMMAND [ARGS]   (bnas COMMAND --help for details)\n"
    "  train    train one network and save it\n"
    "  bench    measure training and inference speed\n";

int main(int argc, char **argv) {
    if (argc < 2) { fputs(usage, stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { fputs(usage, stdout); return 0; }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "bnas: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
