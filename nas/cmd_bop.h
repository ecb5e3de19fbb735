/* `bnas encodings`: the Bop momentum-encoding search (evaluators/bop_encoding.h). */
#ifndef BNAS_CMD_BOP_H
#define BNAS_CMD_BOP_H

/* argv[0] is "encodings". Returns the process exit code (0 ok, 1 error, 2 usage). */
int cmd_encodings(int argc, char **argv);

#endif /* BNAS_CMD_BOP_H */
