/* Raw reference for bench/worker-throughput: drain N entries of a stream with
 * XREADGROUP COUNT <batch> + XACK, hiredis, one connection, the XACK of batch k
 * pipelined with the XREADGROUP of batch k+1 (one round trip per batch).
 *
 *   raw_consume PORT KEY GROUP N [BATCH] [TIMEOUT_S]
 *
 * The group must exist. Prints one JSON line: acked, seconds, msg_per_s.
 * Build: cc -O2 -o raw_consume raw_consume.c -lhiredis
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, redisContext *c, redisReply *r) {
    fprintf(stderr, "raw_consume: %s: %s\n", what,
            r && r->type == REDIS_REPLY_ERROR ? r->str : (c && c->err ? c->errstr : "unexpected reply"));
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: raw_consume PORT KEY GROUP N [BATCH] [TIMEOUT_S]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *key = argv[2], *group = argv[3];
    long n = atol(argv[4]);
    const char *batch = argc > 5 ? argv[5] : "100";
    double timeout = argc > 6 ? atof(argv[6]) : 300.0;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) die("connect", c, NULL);

    const char *rd[] = {"XREADGROUP", "GROUP", group, "raw-1", "COUNT", batch, "STREAMS", key, ">"};
    size_t rdl[9];
    for (int i = 0; i < 9; i++) rdl[i] = strlen(rd[i]);
    long cap = atol(batch) + 3;
    const char **ack = malloc(sizeof(char *) * cap);
    size_t *ackl = malloc(sizeof(size_t) * cap);

    long acked = 0;
    double t0 = now();
    redisAppendCommandArgv(c, 9, rd, rdl);
    while (acked < n) {
        if (now() - t0 > timeout) {
            fprintf(stderr, "raw_consume: timed out with %ld of %ld acked\n", acked, n);
            return 1;
        }
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) die("XREADGROUP", c, NULL);
        if (r->type == REDIS_REPLY_ERROR) die("XREADGROUP", c, r);
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) { /* drained early: bounded by timeout */
            freeReplyObject(r);
            redisAppendCommandArgv(c, 9, rd, rdl);
            continue;
        }
        redisReply *entries = r->element[0]->element[1];
        int k = 0;
        ack[k] = "XACK"; ackl[k++] = 4;
        ack[k] = key; ackl[k++] = strlen(key);
        ack[k] = group; ackl[k++] = strlen(group);
        for (size_t i = 0; i < entries->elements; i++) {
            ack[k] = entries->element[i]->element[0]->str;
            ackl[k++] = entries->element[i]->element[0]->len;
        }
        redisAppendCommandArgv(c, k, ack, ackl);
        int last = acked + (long)entries->elements >= n;
        if (!last) redisAppendCommandArgv(c, 9, rd, rdl);
        freeReplyObject(r); /* hiredis copied the ids into its output buffer */
        redisReply *a;
        if (redisGetReply(c, (void **)&a) != REDIS_OK) die("XACK", c, NULL);
        if (a->type != REDIS_REPLY_INTEGER) die("XACK", c, a);
        acked += a->integer;
        freeReplyObject(a);
    }
    double secs = now() - t0;
    printf("{\"acked\": %ld, \"seconds\": %.6f, \"msg_per_s\": %.1f}\n", acked, secs, acked / secs);
    redisFree(c);
    return 0;
}
