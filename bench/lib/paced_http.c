// paced_http: sends POST requests at a fixed rate over keep-alive connections and
// reports latency percentiles, measured from each request's *scheduled* send time (so a
// slow answer that delays the next request is counted against the server, not hidden).
//
//   paced_http PORT PATH BODY_FILE TOKEN RATE SECONDS [CONNECTIONS]
//
// Prints one line of JSON: {"sent":N,"ok":N,"p50_ms":..,"p90_ms":..,"p99_ms":..,"max_ms":..}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Reads one HTTP response; returns its status or -1.
static int read_response(int fd, char* buf, size_t cap) {
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
        char* end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        size_t header = (size_t)(end - buf) + 4;
        char* cl = strcasestr(buf, "content-length:");
        size_t len = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        while (have < header + len) {
            n = read(fd, buf + have, cap - have - 1);
            if (n <= 0) return -1;
            have += (size_t)n;
        }
        return atoi(buf + 9);
    }
}

static int cmp(const void* a, const void* b) {
    int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: paced_http PORT PATH BODY_FILE TOKEN RATE SECONDS [CONNECTIONS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char* path = argv[2];
    FILE* f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 2;
    }
    static char body[1 << 20];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    double rate = atof(argv[5]);
    double seconds = atof(argv[6]);
    int conns = argc > 7 ? atoi(argv[7]) : 1;
    size_t total = (size_t)(rate * seconds);
    char* req = malloc(body_len + 1024);
    int req_len = sprintf(req,
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                          path, argv[4], body_len);
    memcpy(req + req_len, body, body_len);
    req_len += (int)body_len;

    int* fds = calloc((size_t)conns, sizeof(int));
    for (int i = 0; i < conns; ++i) fds[i] = connect_to(port);
    int64_t* lat = calloc(total, sizeof(int64_t));
    static char buf[1 << 16];
    int64_t interval = (int64_t)(1e9 / rate);
    int64_t start = now_ns() + 50000000LL;
    size_t ok = 0;
    for (size_t i = 0; i < total; ++i) {
        int64_t due = start + (int64_t)i * interval;
        int64_t t = now_ns();
        if (t < due) {
            struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        int fd = fds[i % (size_t)conns];
        if (write(fd, req, (size_t)req_len) != req_len) {
            perror("write");
            return 1;
        }
        int status = read_response(fd, buf, sizeof buf);
        lat[i] = now_ns() - due;
        if (status >= 200 && status < 300) ++ok;
    }
    qsort(lat, total, sizeof(int64_t), cmp);
    double p50 = (double)lat[total / 2] / 1e6, p90 = (double)lat[total * 90 / 100] / 1e6;
    double p99 = (double)lat[total * 99 / 100] / 1e6, mx = (double)lat[total - 1] / 1e6;
    printf("{\"sent\":%zu,\"ok\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n", total, ok,
           p50, p90, p99, mx);
    return ok == total ? 0 : 1;
}
