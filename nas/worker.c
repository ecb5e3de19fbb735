/* Worker processes: the message codec, the controller's pool and `bnas worker` (see nas/worker.h). */
#define _GNU_SOURCE /* pipe/socket flags, wait4 */
#include "nas/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/err.h"
#include "nas/space.h"

extern char **environ;
void openblas_set_num_threads(int n);

/* ---- codec ---------------------------------------------------------------- */

/* A growing output frame. */
typedef struct {
    uint8_t *p;   /* bytes (malloc'd) */
    size_t n;     /* used */
    size_t cap;   /* allocated */
} wbuf;

static void put(wbuf *b, const void *v, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        BN_ASSERT(b->p != NULL);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_f64(wbuf *b, double v) { put(b, &v, 8); }
static void put_str(wbuf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* Starts a frame of type t: the length is patched in by frame_end. */
static void frame_begin(wbuf *b, uint32_t t) {
    memset(b, 0, sizeof *b);
    put_u32(b, 0);
    put_u32(b, t);
}
static void frame_end(wbuf *b, uint8_t **buf, size_t *len) {
    uint32_t n = (uint32_t)(b->n - 4);
    memcpy(b->p, &n, 4);
    *buf = b->p;
    *len = b->n;
}

/* A frame being read; bad is set by any read past its end. */
typedef struct {
    const uint8_t *p; /* frame bytes */
    size_t n;         /* their count */
    size_t at;        /* read position */
    int bad;          /* 1 once a read failed */
} rbuf;

static void get(rbuf *b, void *v, size_t n) {
    if (b->bad || n > b->n - b->at) {
        b->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, b->p + b->at, n);
    b->at += n;
}
static uint32_t get_u32(rbuf *b) { uint32_t v; get(b, &v, 4); return v; }
static uint64_t get_u64(rbuf *b) { uint64_t v; get(b, &v, 8); return v; }
static double get_f64(rbuf *b) { double v; get(b, &v, 8); return v; }
/* A string into dst (cap bytes); bad if it does not fit. */
static void get_str(rbuf *b, char *dst, size_t cap) {
    uint32_t n = get_u32(b);
    if (b->bad || n >= cap || n > b->n - b->at) {
        b->bad = 1;
        if (cap) dst[0] = 0;
        return;
    }
    memcpy(dst, b->p + b->at, n);
    dst[n] = 0;
    b->at += n;
}
/* A malloc'd string, NULL if bad. */
static char *get_str_dup(rbuf *b) {
    uint32_t n = get_u32(b);
    if (b->bad || n > b->n - b->at) {
        b->bad = 1;
        return NULL;
    }
    char *s = bn_malloc((size_t)n + 1);
    memcpy(s, b->p + b->at, n);
    s[n] = 0;
    b->at += n;
    return s;
}

/* Opens frame msg of expected type t. */
static int frame_open(rbuf *b, const uint8_t *msg, size_t len, uint32_t t) {
    memset(b, 0, sizeof *b);
    b->p = msg;
    b->n = len;
    uint32_t n = get_u32(b), type = get_u32(b);
    if (b->bad || (size_t)n + 4 != len || type != t)
        return bn_error(BN_EFORMAT, "malformed worker message (type %u, %zu bytes; expected type %u)",
                        type, len, t);
    return BN_OK;
}

void worker_encode_spec(const spec *s, uint8_t **buf, size_t *len) {
    wbuf b;
    frame_begin(&b, WMSG_SPEC);
    put_str(&b, s->path);
    put_str(&b, s->text);
    put_u32(&b, s->space_text != NULL);
    put_str(&b, s->space_text ? s->space_path : "");
    put_str(&b, s->space_text ? s->space_text : "");
    frame_end(&b, buf, len);
}

void worker_encode_assign(const worker_assign *a, uint8_t **buf, size_t *len) {
    wbuf b;
    frame_begin(&b, WMSG_ASSIGN);
    put_u32(&b, (uint32_t)a->number);
    put_u64(&b, a->seed);
    put_u64(&b, a->hash);
    put_str(&b, a->genome);
    frame_end(&b, buf, len);
}

int worker_decode_assign(const uint8_t *msg, size_t len, worker_assign *a, char *genome, size_t cap) {
    rbuf b;
    int rc = frame_open(&b, msg, len, WMSG_ASSIGN);
    if (rc) return rc;
    a->number = (int)get_u32(&b);
    a->seed = get_u64(&b);
    a->hash = get_u64(&b);
    get_str(&b, genome, cap);
    a->genome = genome;
    if (b.bad || b.at != b.n) return bn_error(BN_EFORMAT, "malformed assignment message (%zu bytes)", len);
    return BN_OK;
}

void worker_encode_result(int number, int trc, const trial_result *r, uint8_t **buf, size_t *len) {
    wbuf b;
    frame_begin(&b, WMSG_RESULT);
    put_u32(&b, (uint32_t)number);
    put_u32(&b, (uint32_t)trc);
    put_str(&b, r->fail_reason);
    put_u32(&b, (uint32_t)r->metrics.n);
    for (int i = 0; i < r->metrics.n; i++) {
        put_str(&b, r->metrics.m[i].name);
        put_f64(&b, r->metrics.m[i].value);
    }
    put_str(&b, r->model_format);
    uint64_t ms = r->model ? r->model_size : 0;
    put_u64(&b, ms);
    put(&b, r->model, ms);
    frame_end(&b, buf, len);
}

int worker_decode_result(const uint8_t *msg, size_t len, int *number, int *trc, trial_result *r) {
    memset(r, 0, sizeof *r);
    rbuf b;
    int rc = frame_open(&b, msg, len, WMSG_RESULT);
    if (rc) return rc;
    *number = (int)get_u32(&b);
    *trc = (int)get_u32(&b);
    get_str(&b, r->fail_reason, sizeof r->fail_reason);
    uint32_t n = get_u32(&b);
    if (n > EVAL_MAX_METRICS) b.bad = 1;
    for (uint32_t i = 0; i < n && !b.bad; i++) {
        get_str(&b, r->metrics.m[i].name, sizeof r->metrics.m[i].name);
        r->metrics.m[i].value = get_f64(&b);
        r->metrics.n++;
    }
    get_str(&b, r->model_format, sizeof r->model_format);
    uint64_t ms = get_u64(&b);
    if (!b.bad && ms > b.n - b.at) b.bad = 1;
    if (!b.bad && ms) {
        r->model = bn_malloc((size_t)ms);
        get(&b, r->model, (size_t)ms);
        r->model_size = (size_t)ms;
    }
    if (b.bad || b.at != b.n) {
        trial_result_free(r);
        return bn_error(BN_EFORMAT, "malformed result message (%zu bytes)", len);
    }
    return BN_OK;
}

int worker_run_assign(const spec *s, trial_fn fn, void *env, const worker_assign *a, trial_result *r) {
    memset(r, 0, sizeof *r);
    space sp;
    space_init(&sp, s);
    genome g;
    space_config cfg;
    int rc = space_genome_parse(&g, a->genome);
    if (!rc) {
        space_decode(&sp, s, &g, &cfg);
        if (cfg.hash != a->hash)
            rc = bn_error(BN_EFORMAT, "trial %d: the genome does not decode to the assigned configuration",
                          a->number);
    }
    if (!rc) rc = fn(env, s, &cfg, a->number, a->seed, r);
    if (rc && !r->fail_reason[0])
        snprintf(r->fail_reason, sizeof r->fail_reason, "%s", bn_errmsg()[0] ? bn_errmsg() : bn_strerror(rc));
    return rc;
}

/* ---- frames on a socket ------------------------------------------------- */

static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes (blocking); 0 ok, -1 EOF or error. */
static int read_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one whole frame (blocking) into *msg (malloc'd). 0 ok, -1 EOF, error or too big. */
static int read_frame(int fd, uint8_t **msg, size_t *len) {
    uint32_t n;
    *msg = NULL;
    if (read_all(fd, (uint8_t *)&n, 4) || n < 4 || n > WORKER_MAX_MSG) return -1;
    uint8_t *p = bn_malloc((size_t)n + 4);
    memcpy(p, &n, 4);
    if (read_all(fd, p + 4, n)) {
        free(p);
        return -1;
    }
    *msg = p;
    *len = (size_t)n + 4;
    return 0;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the controller's pool ---------------------------------------------- */

/* One worker process. */
typedef struct {
    pid_t pid;            /* 0: none running */
    int fd;               /* controller end of its socket pair, -1 if none */
    uint64_t data_limit;  /* its RLIMIT_DATA (0: none) */
} worker_proc;

struct worker_pool {
    char exe[1024];               /* the bnas binary */
    const spec *s;                /* the study's spec */
    volatile sig_atomic_t *stop;  /* set by SIGINT/SIGTERM (may be NULL) */
    int n;                        /* workers */
    worker_proc *w;               /* (n) them */
    uint8_t *spec_msg;            /* the SPEC frame sent to each new worker */
    size_t spec_len;              /* its bytes */
};

static const char *sig_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "signal";
    }
}

/* Waits for worker w to end (kill: SIGKILL it first) and describes how it
   ended in why (cap bytes): "killed by signal N (NAME)" or "worker exited
   with code N", plus its peak RSS when it had a memory limit. */
static void reap(worker_pool *p, worker_proc *w, int kill_it, char *why, size_t cap) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->pid <= 0) return;
    if (kill_it) kill(w->pid, SIGKILL);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r;
    do r = wait4(w->pid, &st, 0, &ru);
    while (r < 0 && errno == EINTR);
    w->pid = 0;
    if (!why) return;
    if (r < 0) snprintf(why, cap, "worker lost (%s)", strerror(errno));
    else if (WIFSIGNALED(st))
        snprintf(why, cap, "killed by signal %d (%s)", WTERMSIG(st), sig_name(WTERMSIG(st)));
    else snprintf(why, cap, "worker exited with code %d", WEXITSTATUS(st));
    double peak = (double)ru.ru_maxrss * 1024.0;
    if (w->data_limit && p->s->max_host_memory > 0 && peak >= 0.5 * p->s->max_host_memory) {
        size_t used = strlen(why);
        snprintf(why + used, cap - used, "; peak RSS %.0f MiB, memory limit %.0f MiB (constraints.max_host_memory)",
                 peak / 1048576.0, p->s->max_host_memory / 1048576.0);
    }
}

/* Starts worker k and sends it the spec (no wait for READY). */
static int spawn(worker_pool *p, int k) {
    worker_proc *w = &p->w[k];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return bn_error(BN_EIO, "cannot make a socket pair for a worker: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0); /* dup2 clears close-on-exec */
    /* Nothing else of the controller's (study lock, SQLite, MPI sockets) reaches the worker. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigset_t none, defs;
    sigemptyset(&none);
    sigemptyset(&defs);
    sigaddset(&defs, SIGINT);
    sigaddset(&defs, SIGTERM);
    sigaddset(&defs, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defs);
    /* Own process group: Ctrl-C reaches the controller only, which then ends the workers. */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    char *argv[] = {"bnas", "worker", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, p->exe, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (e) {
        close(sv[0]);
        return bn_error(BN_EIO, "cannot start a worker (%s worker): %s", p->exe, strerror(e));
    }
    w->pid = pid;
    w->fd = sv[0];
    w->data_limit = 0;
    if (send_all(w->fd, p->spec_msg, p->spec_len)) {
        char why[256];
        reap(p, w, 1, why, sizeof why);
        return bn_error(BN_EIO, "a worker died at its start: %s", why);
    }
    return BN_OK;
}

/* Waits until fd is readable, *stop is set (-2) or the deadline (monotonic
   seconds, <= 0: none) passes (-1); 0 when readable. */
static int wait_readable(int fd, volatile sig_atomic_t *stop, double deadline) {
    for (;;) {
        if (stop && *stop) return -2;
        double now = mono_s();
        if (deadline > 0 && now >= deadline) return -1;
        int ms = 100;
        if (deadline > 0 && (deadline - now) * 1000 < ms) ms = (int)((deadline - now) * 1000) + 1;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, ms);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return 0; /* the read reports it */
    }
}

/* Waits for worker k's READY. */
static int await_ready(worker_pool *p, int k) {
    worker_proc *w = &p->w[k];
    if (wait_readable(w->fd, p->stop, 0) == -2) {
        reap(p, w, 1, NULL, 0);
        return bn_error(BN_EINTR, "stopped while the workers started");
    }
    uint8_t *msg = NULL;
    size_t len = 0;
    char why[256];
    if (read_frame(w->fd, &msg, &len)) {
        reap(p, w, 1, why, sizeof why);
        return bn_error(BN_EIO, "a worker died while loading the study: %s", why);
    }
    rbuf b;
    int rc = frame_open(&b, msg, len, WMSG_READY);
    if (!rc) {
        int wrc = (int)get_u32(&b);
        char text[1024];
        get_str(&b, text, sizeof text);
        w->data_limit = get_u64(&b);
        if (b.bad) rc = bn_error(BN_EFORMAT, "malformed ready message from a worker");
        else if (wrc) rc = bn_error(wrc, "%s", text);
    }
    free(msg);
    if (rc) reap(p, w, 1, NULL, 0);
    return rc;
}

int worker_pool_start(worker_pool **out, const char *exe, int n, const spec *s,
                      volatile sig_atomic_t *stop) {
    *out = NULL;
    worker_pool *p = bn_calloc(1, sizeof *p);
    snprintf(p->exe, sizeof p->exe, "%s", exe);
    p->s = s;
    p->stop = stop;
    p->n = n;
    p->w = bn_calloc((size_t)n, sizeof *p->w);
    for (int k = 0; k < n; k++) p->w[k].fd = -1;
    worker_encode_spec(s, &p->spec_msg, &p->spec_len);
    int rc = BN_OK;
    for (int k = 0; k < n && !rc; k++) rc = spawn(p, k); /* all load their data at once */
    for (int k = 0; k < n && !rc; k++) rc = await_ready(p, k);
    if (rc) {
        worker_pool_stop(p);
        return rc;
    }
    *out = p;
    return BN_OK;
}

int worker_pool_run(worker_pool *p, int k, const worker_assign *a, trial_result *out, int *trc) {
    memset(out, 0, sizeof *out);
    *trc = BN_OK;
    if (k < 0 || k >= p->n) return bn_error(BN_EARG, "worker slot %d of %d", k, p->n);
    worker_proc *w = &p->w[k];
    uint8_t *msg = NULL;
    size_t len = 0;
    worker_encode_assign(a, &msg, &len);
    int rc = BN_OK;
    for (int attempt = 0;; attempt++) { /* a worker that died idle is replaced once */
        if (w->pid == 0 && ((rc = spawn(p, k)) || (rc = await_ready(p, k)))) goto done;
        if (send_all(w->fd, msg, len) == 0) break;
        char why[256];
        reap(p, w, 1, why, sizeof why);
        if (attempt) {
            rc = bn_error(BN_EIO, "trial %d: cannot reach a fresh worker: %s", a->number, why);
            goto done;
        }
    }
    free(msg);
    msg = NULL;
    double limit = p->s->trial_time, deadline = limit > 0 ? mono_s() + limit : 0;
    int wr = wait_readable(w->fd, p->stop, deadline);
    if (wr == -2) { /* stopped: the trial stays pending */
        reap(p, w, 1, NULL, 0);
        rc = BN_EINTR;
        goto done;
    }
    if (wr == -1) {
        reap(p, w, 1, NULL, 0);
        snprintf(out->fail_reason, sizeof out->fail_reason, "time limit %g s", limit);
        *trc = BN_EIO;
        goto done;
    }
    /* Readable: the result, or EOF because the worker died. The rest of a
       frame follows its first bytes at once (the worker writes it whole). */
    int number = -1;
    char why[256];
    if (read_frame(w->fd, &msg, &len) == 0) {
        int drc = worker_decode_result(msg, len, &number, trc, out);
        if (!drc && number == a->number) {
            if (*trc == BN_EINTR) *trc = BN_EIO; /* a worker is never stopped by a signal of ours */
            goto done;
        }
        /* Garbage from a live worker: not to be trusted again. */
        snprintf(why, sizeof why, "the worker's result was malformed (%s)",
                 drc ? bn_errmsg() : "for another trial");
        reap(p, w, 1, NULL, 0);
    } else {
        reap(p, w, 1, why, sizeof why); /* EOF: it died; how */
    }
    trial_result_free(out);
    snprintf(out->fail_reason, sizeof out->fail_reason, "%s", why);
    *trc = BN_EIO;
done:
    free(msg);
    return rc;
}

void worker_pool_stop(worker_pool *p) {
    if (!p) return;
    for (int k = 0; k < p->n; k++) /* EOF: each worker ends after its trial */
        if (p->w[k].fd >= 0) {
            close(p->w[k].fd);
            p->w[k].fd = -1;
        }
    double t0 = mono_s();
    for (int k = 0; k < p->n; k++) {
        worker_proc *w = &p->w[k];
        while (w->pid > 0) {
            int st;
            pid_t r = waitpid(w->pid, &st, WNOHANG);
            if (r == w->pid || (r < 0 && errno != EINTR)) w->pid = 0;
            else if (mono_s() - t0 > 5) reap(p, w, 1, NULL, 0);
            else {
                struct timespec ts = {0, 5000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    free(p->spec_msg);
    free(p->w);
    free(p);
}

/* ---- the worker process ------------------------------------------------- */

/* Ends this worker when its controller is gone (it is then reparented). */
static void *watch_parent(void *arg) {
    pid_t parent = (pid_t)(intptr_t)arg;
    for (;;) {
        if (getppid() != parent) _exit(3);
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Bytes of this process's data segment (VmData), 0 if unknown. */
static uint64_t data_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmData: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

static int send_ready(int rc, const char *text, uint64_t limit) {
    wbuf b;
    frame_begin(&b, WMSG_READY);
    put_u32(&b, (uint32_t)rc);
    put_str(&b, text);
    put_u64(&b, limit);
    uint8_t *msg;
    size_t len;
    frame_end(&b, &msg, &len);
    int r = send_all(0, msg, len);
    free(msg);
    return r;
}

int cmd_worker(int argc, char **argv) {
    (void)argv;
    if (argc != 1 || isatty(0)) {
        fprintf(stderr, "bnas worker: started by bnas run/resume itself (not a command for users)\n");
        return 2;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, watch_parent, (void *)(intptr_t)getppid()) == 0) pthread_detach(th);
    /* One thread per trial, as in-process trials run. */
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    uint8_t *msg = NULL;
    size_t len = 0;
    if (read_frame(0, &msg, &len)) return 1;
    rbuf b;
    spec s;
    void *env = NULL;
    trial_fn fn = NULL;
    int have_spec = 0;
    int rc = frame_open(&b, msg, len, WMSG_SPEC);
    if (!rc) {
        char *path = get_str_dup(&b), *text = get_str_dup(&b);
        int has_space = (int)get_u32(&b);
        char *space_path = get_str_dup(&b), *space_text = get_str_dup(&b);
        if (b.bad) rc = bn_error(BN_EFORMAT, "malformed spec message");
        else rc = spec_parse(&s, path, text, has_space ? space_path : NULL, has_space ? space_text : NULL);
        have_spec = rc == BN_OK;
        free(path);
        free(text);
        free(space_path);
        free(space_text);
    }
    free(msg);
    if (!rc) rc = trial_env_create(&env, &fn, &s);
    uint64_t limit = 0;
    if (!rc && s.max_host_memory > 0) {
        /* The memory limit: what the worker holds now (data sets, runtime) plus
           the spec's per-trial training memory. */
        uint64_t base = data_bytes();
        limit = base + (uint64_t)s.max_host_memory;
        struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
        if (!base || setrlimit(RLIMIT_DATA, &rl) != 0) limit = 0;
    }
    if (send_ready(rc, rc ? bn_errmsg() : "", limit) || rc) {
        trial_env_free(env);
        if (have_spec) spec_free(&s);
        return 1;
    }
    int code = 0;
    for (;;) {
        if (read_frame(0, &msg, &len)) break; /* EOF: the controller is done with us */
        worker_assign a;
        char genome[2048];
        trial_result r;
        memset(&r, 0, sizeof r);
        int number = -1, trc;
        if (worker_decode_assign(msg, len, &a, genome, sizeof genome) == BN_OK) {
            number = a.number;
            trc = worker_run_assign(&s, fn, env, &a, &r);
        } else {
            trc = BN_EFORMAT;
            snprintf(r.fail_reason, sizeof r.fail_reason, "%s", bn_errmsg());
        }
        free(msg);
        uint8_t *out;
        size_t olen;
        worker_encode_result(number, trc, &r, &out, &olen);
        trial_result_free(&r);
        int w = send_all(0, out, olen);
        free(out);
        if (w) {
            code = 1;
            break;
        }
    }
    trial_env_free(env);
    spec_free(&s);
    return code;
}
