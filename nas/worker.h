/*
** Trials in worker processes, and the messages that carry them.
**
** A worker is `bnas worker`: the controller starts it by posix_spawn of its own
** binary (/proc/self/exe; the controller never forks, so no OpenMP state is
** copied), in its own process group, talking over a socket pair on the
** worker's fd 0. The worker parses the spec, loads the data once, sets its
** memory limit and then trains one trial at a time, on one thread, exactly as
** an in-process trial (the same trial function, so the same result).
**
** Messages (the same bytes go over MPI, nas/mpi.c): a frame is
**   u32 length (of what follows), u32 type, payload
** with integers and doubles in host byte order (same binary, same machine or
** a homogeneous cluster) and str = u32 length + bytes (no NUL):
**   SPEC   (1) controller -> worker: str spec path, str spec text,
**              u32 has_space, str space path, str space text
**   READY  (2) worker -> controller: i32 rc, str message, u64 data limit
**              (RLIMIT_DATA bytes, 0: none)
**   ASSIGN (3) controller -> worker: i32 number, u64 seed, u64 config hash,
**              str genome
**   RESULT (4) worker -> controller: i32 number, i32 rc, str fail reason,
**              u32 n, n x (str name, f64 value), str model format,
**              u64 model size, model bytes
**
** What a worker's death means for its trial (FAIL with the reason):
**   killed by a signal     "killed by signal 11 (SIGSEGV)"
**   exits without a result "worker exited with code N"
**   runs too long          "time limit 600 s" (budget.trial_time; the
**                          controller kills it with SIGKILL)
**   memory                 RLIMIT_DATA = what the worker held after loading
**                          the data + constraints.max_host_memory: past it
**                          allocations fail and bn_malloc aborts (SIGABRT);
**                          the reason then adds the worker's peak RSS
** and the next trial of that slot gets a fresh worker. A worker whose
** controller died (even by SIGKILL) exits within 0.2 s.
*/
#ifndef BNAS_WORKER_H
#define BNAS_WORKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "nas/spec.h"
#include "nas/trial.h"

enum { WMSG_SPEC = 1, WMSG_READY = 2, WMSG_ASSIGN = 3, WMSG_RESULT = 4 };

#define WORKER_MAX_MSG ((size_t)1 << 30) /* largest frame accepted (a model blob is inside) */

/* One trial to run. */
typedef struct {
    int number;          /* trial number */
    uint64_t seed;       /* trial seed */
    uint64_t hash;       /* configuration hash: the worker checks its decoding against it */
    const char *genome;  /* genome text (space_genome_format) */
} worker_assign;

/* Encoders: a whole frame in *buf (malloc'd), its bytes in *len. */
void worker_encode_spec(const spec *s, uint8_t **buf, size_t *len);
void worker_encode_assign(const worker_assign *a, uint8_t **buf, size_t *len);
void worker_encode_result(int number, int trc, const trial_result *r, uint8_t **buf, size_t *len);

/* Decoders of a whole frame (msg, len): BN_EFORMAT on a malformed one.
   worker_decode_assign copies the genome into genome (cap bytes);
   worker_decode_result fills r (r->model malloc'd) and *trc. */
int worker_decode_assign(const uint8_t *msg, size_t len, worker_assign *a, char *genome, size_t cap);
int worker_decode_result(const uint8_t *msg, size_t len, int *number, int *trc, trial_result *r);

/* Runs assignment a with trial function fn (context env) of spec s, as a
   worker does: decodes the genome, checks the hash, trains. Returns the trial's
   rc with r->fail_reason set on failure. */
int worker_run_assign(const spec *s, trial_fn fn, void *env, const worker_assign *a, trial_result *r);

typedef struct worker_pool worker_pool;

/* Starts n workers (exe: a bnas binary, run as `exe worker`) for spec s and
   waits until each has loaded its data. stop: when set, waits end with
   BN_EINTR. Errors (cannot start, the data does not load) carry the worker's
   message. */
int worker_pool_start(worker_pool **out, const char *exe, int n, const spec *s,
                      volatile sig_atomic_t *stop);

/* Runs a on worker k (one caller per k at a time; a dead worker is replaced
   first). Returns BN_OK with the trial's outcome in *trc and out (an error
   *trc has out->fail_reason: the trial's own error, or a death, time limit or
   memory limit as above), BN_EINTR if *stop was set (the worker is killed,
   the trial has no outcome), or an error if no worker could be started. */
int worker_pool_run(worker_pool *p, int k, const worker_assign *a, trial_result *out, int *trc);

/* Ends every worker (closes its socket; SIGKILL after 5 s) and frees p (NULL: no-op). */
void worker_pool_stop(worker_pool *p);

/* `bnas worker`: the worker process's main loop on fd 0 (not for users). */
int cmd_worker(int argc, char **argv);

#endif /* BNAS_WORKER_H */
