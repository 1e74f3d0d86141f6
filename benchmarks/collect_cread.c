/* The C floor for benchmarks/collect_bench.py: read the same cgroup files as one collector tick,
 * either open+read+close each time or with fds kept open and pread(fd, 0) each time.
 * usage: collect_cread <file-list> <iterations> orc|pread
 * prints "<wall ns per pass> <CPU ns per pass> <files> <bytes> <fds kept>" */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s list iterations orc|pread\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    size_t cap = 1024, n = 0;
    char **paths = malloc(cap * sizeof *paths);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (n == cap) paths = realloc(paths, (cap *= 2) * sizeof *paths);
        paths[n++] = strdup(line);
    }
    fclose(f);
    int iters = atoi(argv[2]);
    int kept = strcmp(argv[3], "pread") == 0;
    static char buf[65536];
    int *fds = NULL;
    size_t nkept = 0;
    if (kept) {
        /* Keep as many fds as RLIMIT_NOFILE allows (raised to the hard limit); past that, the
         * rest are read open+read+close, as cgroupfs.reader.KeptReader degrades. */
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rlim_t want = n + 64;
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        size_t room = rl.rlim_cur > 64 ? rl.rlim_cur - 64 : 0;
        fds = malloc(n * sizeof *fds);
        for (size_t i = 0; i < n; i++) {
            fds[i] = -1;
            if (i < room) {
                fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0) { perror(paths[i]); return 1; }
                nkept++;
            }
        }
    }
    long total = 0;
    double t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < n; i++) {
            ssize_t r;
            if (kept && fds[i] >= 0) {
                r = pread(fds[i], buf, sizeof buf, 0);
            } else {
                int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
                if (fd < 0) continue;
                r = read(fd, buf, sizeof buf);
                close(fd);
            }
            if (r > 0) total += r;
        }
    }
    double t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    /* wall ns and CPU ns per pass over all files */
    printf("%.0f %.0f %zu %ld %zu\n", (t1 - t0) / iters, (c1 - c0) / iters, n, total, nkept);
    return 0;
}
