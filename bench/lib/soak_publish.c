// soak_publish: publishes at a steady rate for a long time, open loop, over several
// keep-alive connections, and keeps a progress file up to date for a sampler.
//
//   soak_publish PORT PATH BODY_FILE TOKEN RATE SECONDS CONNECTIONS PROGRESS_FILE [START]
//
// START: Unix time (seconds, may have decimals) of the first request, so a sampler can
// start at the same moment; default 0.1 s from now.
// Each connection has its own thread and sends RATE/CONNECTIONS requests per second on a
// fixed schedule (the threads' schedules are interleaved), one request in flight per
// connection. A slow answer makes that thread late; it then sends the next ones at once
// until it is back on schedule, so the total still comes to RATE*SECONDS and lateness is
// measured from each request's scheduled send time (like lib/paced_http.c). A broken
// connection is counted as an error and reopened.
//
// PROGRESS_FILE is rewritten (write + rename) every 0.1 s: "sent ok errors elapsed_s".
// At the end prints one line of JSON:
//   {"sent":N,"ok":N,"errors":N,"seconds":S,"rate":R,"p50_ms":..,"p99_ms":..,"max_ms":..,
//    "first_error":"HTTP status or errno text"}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
// Lateness histogram: 10 us buckets up to 100 ms, then 1 ms buckets up to 100 s.
#define FINE 10000
#define COARSE 100000
#define BUCKETS (FINE + COARSE + 1)

static int port;
static const char* path;
static char* request;
static int request_len;
static double rate;
static double seconds;
static int conns;
static int64_t start_ns;
static atomic_uint_fast64_t sent, ok, errors;
static volatile sig_atomic_t stop;
static pthread_mutex_t first_error_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void note_error(const char* what) {
    pthread_mutex_lock(&first_error_mu);
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", what);
    pthread_mutex_unlock(&first_error_mu);
}

static int connect_to(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {30, 0};  // a request never waits longer than this
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// Reads one HTTP response; returns its status or -1. Copies the start of an error body.
static int read_response(int fd, char* buf, size_t cap) {
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
        char* end = strstr(buf, "\r\n\r\n");
        if (!end) {
            if (have + 1 >= cap) return -1;
            continue;
        }
        size_t header = (size_t)(end - buf) + 4;
        char* cl = strcasestr(buf, "content-length:");
        size_t len = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (header + len + 1 > cap) return -1;
        while (have < header + len) {
            n = read(fd, buf + have, cap - have - 1);
            if (n <= 0) return -1;
            have += (size_t)n;
        }
        buf[have] = 0;
        int status = atoi(buf + 9);
        if (status < 200 || status >= 300) {
            char text[256];
            snprintf(text, sizeof text, "HTTP %d %.200s", status, buf + header);
            note_error(text);
        }
        return status;
    }
}

static size_t bucket_of(int64_t late_ns) {
    if (late_ns < 0) late_ns = 0;
    int64_t us10 = late_ns / 10000;
    if (us10 < FINE) return (size_t)us10;
    int64_t ms = late_ns / 1000000;  // >= 100
    if (ms - 100 < COARSE) return (size_t)(FINE + ms - 100);
    return BUCKETS - 1;
}

static double bucket_ms(size_t b) {
    if (b < FINE) return (double)b * 0.01;
    return (double)(b - FINE + 100);
}

typedef struct {
    int index;
    uint32_t* hist;
} Worker;

static void* run(void* arg) {
    Worker* w = arg;
    size_t total = (size_t)(rate * seconds);
    int64_t interval = (int64_t)(1e9 / rate);  // between two requests of all threads
    static __thread char buf[1 << 16];
    int fd = connect_to();
    // Request k of the run (k = index, index + conns, ...) is due at start + k * interval.
    for (size_t k = (size_t)w->index; k < total && !stop; k += (size_t)conns) {
        int64_t due = start_ns + (int64_t)k * interval;
        if (now_ns() < due) {
            struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop) {
            }
        }
        atomic_fetch_add(&sent, 1);
        int status = -1;
        if (fd < 0) fd = connect_to();
        if (fd >= 0 && write(fd, request, (size_t)request_len) == request_len)
            status = read_response(fd, buf, sizeof buf);
        if (status < 0) {
            char text[128];
            snprintf(text, sizeof text, "connection: %s",
                     fd < 0 ? "cannot connect" : strerror(errno ? errno : EPIPE));
            note_error(text);
            if (fd >= 0) close(fd);
            fd = -1;
            atomic_fetch_add(&errors, 1);
            struct timespec pause = {0, 100000000};  // 100 ms before trying again
            nanosleep(&pause, NULL);
            continue;
        }
        w->hist[bucket_of(now_ns() - due)]++;
        if (status >= 200 && status < 300)
            atomic_fetch_add(&ok, 1);
        else
            atomic_fetch_add(&errors, 1);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void write_progress(const char* file) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE* f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%llu %llu %llu %.1f\n", (unsigned long long)atomic_load(&sent),
            (unsigned long long)atomic_load(&ok), (unsigned long long)atomic_load(&errors),
            (double)(now_ns() - start_ns) / 1e9);
    fclose(f);
    rename(tmp, file);
}

int main(int argc, char** argv) {
    if (argc != 9 && argc != 10) {
        fprintf(stderr,
                "usage: soak_publish PORT PATH BODY_FILE TOKEN RATE SECONDS CONNECTIONS "
                "PROGRESS_FILE [START]\n");
        return 2;
    }
    port = atoi(argv[1]);
    path = argv[2];
    FILE* f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 2;
    }
    static char body[1 << 16];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    rate = atof(argv[5]);
    seconds = atof(argv[6]);
    conns = atoi(argv[7]);
    const char* progress = argv[8];
    if (port <= 0 || rate <= 0 || seconds <= 0 || conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr, "soak_publish: bad arguments (RATE, SECONDS > 0; 1 <= CONNECTIONS <= %d)\n",
                MAX_CONNS);
        return 2;
    }
    request = malloc(body_len + 1024);
    request_len = sprintf(request,
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                          path, argv[4], body_len);
    memcpy(request + request_len, body, body_len);
    request_len += (int)body_len;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    start_ns = now_ns() + 100000000LL;
    if (argc == 10) {
        struct timespec real;
        clock_gettime(CLOCK_REALTIME, &real);
        double ahead = atof(argv[9]) - ((double)real.tv_sec + (double)real.tv_nsec / 1e9);
        if (ahead > 0 && ahead < 3600) start_ns = now_ns() + (int64_t)(ahead * 1e9);
    }
    pthread_t threads[MAX_CONNS];
    Worker workers[MAX_CONNS];
    for (int i = 0; i < conns; ++i) {
        workers[i].index = i;
        workers[i].hist = calloc(BUCKETS, sizeof(uint32_t));
        pthread_create(&threads[i], NULL, run, &workers[i]);
    }
    // Progress every 0.1 s until every thread is done.
    size_t total = (size_t)(rate * seconds);
    while (!stop && atomic_load(&sent) < total) {
        write_progress(progress);
        struct timespec tenth = {0, 100000000};
        nanosleep(&tenth, NULL);
    }
    for (int i = 0; i < conns; ++i) pthread_join(threads[i], NULL);
    double elapsed = (double)(now_ns() - start_ns) / 1e9;
    write_progress(progress);

    uint64_t counted = 0;
    for (int i = 0; i < conns; ++i)
        for (size_t b = 0; b < BUCKETS; ++b) counted += workers[i].hist[b];
    double pct[3] = {0, 0, 0};
    const double want[3] = {0.50, 0.99, 1.0};
    uint64_t seen = 0;
    int next = 0;
    for (size_t b = 0; b < BUCKETS && next < 3; ++b) {
        for (int i = 0; i < conns; ++i) seen += workers[i].hist[b];
        while (next < 3 && counted > 0 && (double)seen >= want[next] * (double)counted)
            pct[next++] = bucket_ms(b);
    }
    // JSON-safe first error: drop quotes, backslashes and control characters.
    for (char* p = first_error; *p; ++p)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
    printf(
        "{\"sent\":%llu,\"ok\":%llu,\"errors\":%llu,\"seconds\":%.2f,\"rate\":%.1f,\"p50_ms\":%.2f,"
        "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"first_error\":\"%s\"}\n",
        (unsigned long long)atomic_load(&sent), (unsigned long long)atomic_load(&ok),
        (unsigned long long)atomic_load(&errors), elapsed, (double)atomic_load(&ok) / elapsed,
        pct[0], pct[1], pct[2], first_error);
    return atomic_load(&errors) == 0 && !stop ? 0 : 1;
}
