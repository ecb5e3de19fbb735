/* Engine subcommands of the bnas command line: train, bench. */
#ifndef BNAS_CMD_ENGINE_H
#define BNAS_CMD_ENGINE_H

/* bnas train [options]: trains one network and saves it. Returns the exit code. */
int cmd_train(int argc, char **argv);

/* bnas bench [options]: measures training, inference and the sgemm roof. */
int cmd_bench(int argc, char **argv);

#endif /* BNAS_CMD_ENGINE_H */
