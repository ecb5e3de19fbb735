/*
** The subcommands of `bnas`. Each takes the arguments after the command name
** (argv[0] is the command name) and returns the process exit code:
** 0 ok, 1 runtime error, 2 usage error.
*/
#ifndef BNAS_COMMANDS_H
#define BNAS_COMMANDS_H

#include "engine/data.h"

/* Search commands (nas/cli.c). */
int cmd_run(int argc, char **argv);     /* bnas run SPEC [--db FILE] [--threads N] [--quiet] */
int cmd_resume(int argc, char **argv);  /* bnas resume DB [--force] [--threads N] [--quiet] */
int cmd_status(int argc, char **argv);  /* bnas status DB */
int cmd_trials(int argc, char **argv);  /* bnas trials DB [--csv] */
int cmd_pareto(int argc, char **argv);  /* bnas pareto DB [--csv] */
int cmd_mpi(int argc, char **argv);     /* mpirun -np N bnas mpi run|resume ... (nas/mpi.c, -DBNAS_MPI=ON) */
int cmd_report(int argc, char **argv);  /* bnas report DB [MORE_DB...] -o FILE.html (nas/cmd_report.c) */
/* bnas export DB (--pareto | --trial N ...) -o DIR: model files, standalone C
   sources and cards of chosen trials (nas/cmd_export.c) */
int cmd_export(int argc, char **argv);
/* bnas score SPEC [KEY=VALUE ...] [--genome G] [--trial N] [--model FILE]: trains and
   scores one configuration with the study's trial function (nas/cmd_score.c) */
int cmd_score(int argc, char **argv);

/* Engine commands (nas/cmd_engine.c, nas/cmd_eval.c, nas/cmd_bop.c, nas/cmd_measure.c). */
int cmd_train(int argc, char **argv);   /* bnas train [options]: train one network, save it */
int cmd_bench(int argc, char **argv);   /* bnas bench [--quick]: speed of training and inference */
int cmd_eval(int argc, char **argv);    /* bnas eval MODEL [options]: bit-error tolerance of a model */
int cmd_encodings(int argc, char **argv); /* bnas encodings [options]: Bop momentum-format search (nas/cmd_bop.c) */
/* bnas measure MODEL EVALUATOR [key=value ...] | --list: one evaluator on a model (nas/cmd_measure.c) */
int cmd_measure(int argc, char **argv);

/* Prints the error-model lines of `bnas bench` (nas/bench_errmodel.c): images/s
   of errmodel_logits (weights on the fast path; XNOR products and
   activations through the hooked driver) against packed_logits, FC512-FC512
   and VGG3 with random weights. quick: fewer images. Returns 0, or 1 on error. */
int bench_errmodel(const dataset *test, int quick);

/* Prints the fault-injection lines of `bnas bench` (nas/cmd_eval.c): packed vs
   float path with the same injected flips, FC512-FC512 and VGG3, on the test
   images. quick: fewer images. Returns 0, or 1 on error (message printed). */
int bench_fault(const dataset *test, int quick);

/* Version string of bnas (nas/version.c). */
const char *bnas_version(void);

#endif /* BNAS_COMMANDS_H */
