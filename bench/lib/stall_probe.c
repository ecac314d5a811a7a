/* stall_probe: how long this machine itself stops running programs.
 *
 *   stall_probe SECONDS
 *
 * One thread per CPU, pinned, sleeps 1 ms at a time and measures how late it wakes up.
 * A wake-up more than 5 ms late is a stall: on a virtual machine it is mostly the host
 * not running the VM (steal), which no program inside can avoid. When SECONDS have passed
 * (or on SIGTERM) prints one JSON line:
 *   {"stalls": n, "longest_ms": x, "stalled_ms": total}
 * where a stall seen by several CPUs at once is counted once (by the latest wake-up).
 * bench/api-publish runs it beside the paced latency step, so a p99 can be read against
 * what the machine did in the same seconds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 64
#define MAX_STALLS 4096
#define STALL_NS 5000000LL

typedef struct {
    int64_t start, end;
} Stall;

static Stall stalls[MAX_CPUS][MAX_STALLS];
static int counts[MAX_CPUS];
static volatile sig_atomic_t stop;
static int64_t deadline;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

static void* watch(void* arg) {
    long cpu = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    while (!stop && now_ns() < deadline) {
        int64_t before = now_ns();
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        int64_t after = now_ns();
        if (after - before - 1000000 > STALL_NS && counts[cpu] < MAX_STALLS)
            stalls[cpu][counts[cpu]++] = (Stall){before + 1000000, after};
    }
    return NULL;
}

static int by_start(const void* a, const void* b) {
    const Stall* x = a;
    const Stall* y = b;
    return (x->start > y->start) - (x->start < y->start);
}

int main(int argc, char** argv) {
    if (argc != 2 || atof(argv[1]) <= 0) {
        fprintf(stderr, "usage: stall_probe SECONDS\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    deadline = now_ns() + (int64_t)(atof(argv[1]) * 1e9);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > MAX_CPUS) cpus = MAX_CPUS;
    pthread_t threads[MAX_CPUS];
    for (long i = 0; i < cpus; ++i) pthread_create(&threads[i], NULL, watch, (void*)i);
    for (long i = 0; i < cpus; ++i) pthread_join(threads[i], NULL);

    /* Merge the CPUs' stalls: overlapping intervals are one stall. */
    static Stall all[MAX_CPUS * MAX_STALLS];
    size_t n = 0;
    for (long i = 0; i < cpus; ++i)
        for (int k = 0; k < counts[i]; ++k) all[n++] = stalls[i][k];
    qsort(all, n, sizeof all[0], by_start);
    size_t merged = 0;
    int64_t longest = 0, total = 0;
    for (size_t i = 0; i < n;) {
        Stall s = all[i++];
        while (i < n && all[i].start <= s.end) {
            if (all[i].end > s.end) s.end = all[i].end;
            ++i;
        }
        ++merged;
        total += s.end - s.start;
        if (s.end - s.start > longest) longest = s.end - s.start;
    }
    printf("{\"stalls\":%zu,\"longest_ms\":%.1f,\"stalled_ms\":%.1f}\n", merged, longest / 1e6, total / 1e6);
    return 0;
}
