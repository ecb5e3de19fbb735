/* The bnas command line: dispatches to the subcommands (nas/commands.h). */
#define _POSIX_C_SOURCE 200809L /* setenv, execv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "nas/commands.h"
#include "nas/worker.h"

typedef struct {
    const char *name;                 /* command word */
    int (*fn)(int argc, char **argv); /* handler */
} command;

static void usage(FILE *f) {
    fprintf(f,
            "usage: bnas COMMAND [ARGS]   (bnas COMMAND --help for details)\n"
            "\n"
            "search:\n"
            "  run SPEC [--db FILE]       start a search from a spec file\n"
            "  resume DB [--force]        continue an interrupted search\n"
            "  status DB                  counts, front size, hypervolume\n"
            "  trials DB [--csv]          every trial with its metrics\n"
            "  pareto DB [--csv]          the Pareto-optimal trials\n"
            "  mpi run|resume ...         distributed search under mpirun (built with -DBNAS_MPI=ON)\n"
            "  report DB -o FILE.html     HTML report: front, hypervolume, fault curves, trials\n"
            "  export DB --pareto -o DIR  model files, standalone C and cards of trials\n"
            "  score SPEC KEY=VALUE ...   train and score one configuration as the study's trial would\n"
            "engine:\n"
            "  train                      train one network and save it as a model file\n"
            "  eval MODEL                 accuracy, margins and accuracy under bit errors of a model\n"
            "  bench                      speed of training, packed inference and fault injection\n"
            "  encodings                  search small momentum formats for Bop training\n"
            "  measure MODEL EVALUATOR    run one evaluator (fefet, lim, lta, ...) on a model, key=value params\n"
            "  measure --list             list the evaluators\n"
            "\n"
            "exit codes: 0 ok, 1 runtime error, 2 usage error\n");
}

/* OpenMP threads that spin at a barrier take the core from the thread they wait
   for as soon as other processes load the machine: under a load of 8 on 2 cores
   an FC512-FC512 training epoch took 3.7x as long as with sleeping waits
   (README, Benchmark). libgomp reads OMP_WAIT_POLICY once, when it loads, so
   bnas sets it to passive and executes itself again; a user's own setting is
   kept, and if the exec fails bnas carries on with the default policy. */
static void wait_policy_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || setenv("OMP_WAIT_POLICY", "passive", 1)) return;
    execv("/proc/self/exe", argv);
}

/* glibc hands blocks above its mmap threshold (128 KiB, raised up to 32 MiB
   as blocks are freed) and the heap's free top back to the kernel at free();
   the engine frees and reallocates its batch buffers at every step and every
   evaluation chunk (net_forward_eval's are tens of MiB for a conv net), so
   each was faulted in again page by page: 835,000 page faults and a third of a
   small conv trial's time (C32-MP2-FC256, 5,000 images, 1 epoch: 4.4 s, 2.9 s
   with freed memory kept; README, Benchmark). bnas keeps it: the process's
   memory stays at its high-water mark, which is what it needs anyway. */
static void malloc_keep_freed(void) {
#ifdef __GLIBC__
    if (!mallopt(M_MMAP_THRESHOLD, 1 << 30)) mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

int main(int argc, char **argv) {
    wait_policy_passive(argv);
    malloc_keep_freed();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bnas %s\n", bnas_version());
        return 0;
    }
    const command cmds[] = {
        {"run", cmd_run},
        {"resume", cmd_resume},
        {"status", cmd_status},
        {"trials", cmd_trials},
        {"pareto", cmd_pareto},
        {"export", cmd_export},
        {"report", cmd_report},
        {"mpi", cmd_mpi},
        {"score", cmd_score},
        {"train", cmd_train},
        {"eval", cmd_eval},
        {"measure", cmd_measure},
        {"encodings", cmd_encodings},
        {"bench", cmd_bench},
        {"worker", cmd_worker}, /* hidden: the trial worker process of run/resume (nas/worker.h) */
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (strcmp(argv[1], cmds[i].name)) continue;
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "bnas: unknown command '%s' (bnas --help lists them)\n", argv[1]);
    return 2;
}
