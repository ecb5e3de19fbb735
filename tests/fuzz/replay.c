/*
** Replays a fuzz target's corpus without libFuzzer: calls the target's
** LLVMFuzzerTestOneInput on every regular file of each directory (or file)
** named on the command line, in name order. Built with the ordinary compiler
** (and, in the sanitizer build, under ASan and UBSan), so every corpus file is
** a regression test in every build.
**
** Usage: fuzz_replay_TARGET DIR_OR_FILE...   Exits 0 after running at least one
** input; 1 if a directory cannot be read or holds no input at all (an empty
** corpus would make the test pass without testing anything). A target that
** breaks a contract aborts, and a sanitizer error ends the process, so either
** fails the test.
*/
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on the file at path. 0, or -1 if it cannot be read. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* A copy of exactly len bytes, so ASan sees any read past the input. */
    uint8_t *in = malloc(len ? len : 1);
    if (!in) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int runs = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            perror(argv[a]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[a])) return 1;
            runs++;
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d) {
            perror(argv[a]);
            return 1;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char **nn = realloc(names, (n + 1) * sizeof *names);
            if (!nn) return 1;
            names = nn;
            names[n] = malloc(strlen(argv[a]) + strlen(e->d_name) + 2);
            if (!names[n]) return 1;
            sprintf(names[n], "%s/%s", argv[a], e->d_name);
            n++;
        }
        closedir(d);
        if (names) qsort(names, n, sizeof *names, cmp_name);
        for (size_t i = 0; i < n; i++) {
            if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(names[i])) return 1;
                runs++;
            }
            free(names[i]);
        }
        free(names);
    }
    printf("replayed %d inputs\n", runs);
    if (runs == 0) {
        fprintf(stderr, "no input to replay\n");
        return 1;
    }
    return 0;
}
