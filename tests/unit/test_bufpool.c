/* test_bufpool.c - the pool of reusable request buffers (proto/bufpool.h): a block comes back
 * to the next taker of its size class, small, huge and surplus blocks are not kept, the cap
 * follows the recent peak, grow keeps the bytes in use, a dynbuf and a decoded array give their
 * memory back, and threads hammering one pool never see one another's bytes (run it under
 * make asan / valgrind for the memory side). */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "array.h"
#include "bufpool.h"
#include "dynbuf.h"
#include "segloss.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

static void test_null_pool(void)
{
    void *b = slp_bufpool_get(NULL, 1000);
    CHECK(b != NULL);
    b = slp_bufpool_grow(NULL, b, 1000, 5000);
    CHECK(b != NULL);
    slp_bufpool_put(NULL, b);
    slp_bufpool_put(NULL, NULL);
    slp_bufpool_free(NULL);
    struct slp_bufpool_stats st;
    slp_bufpool_stats(NULL, &st);
    CHECK(st.kept == 0 && st.hits == 0);
}

static void test_reuse(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 256 * MIB);
    CHECK(p != NULL);
    struct slp_bufpool_stats st;
    unsigned char *a = slp_bufpool_get(p, 8 * MIB);
    CHECK(a != NULL);
    memset(a, 1, 8 * MIB);
    slp_bufpool_stats(p, &st);
    CHECK(st.misses == 1 && st.hits == 0 && st.out_bytes >= 8 * MIB);
    slp_bufpool_put(p, a);
    slp_bufpool_stats(p, &st);
    CHECK(st.kept == 1 && st.kept_bytes >= 8 * MIB && st.out_bytes == 0);
    /* 5 MiB: the 8 MiB block is within 2x, taken; 3 MiB would waste more than half of it */
    unsigned char *b = slp_bufpool_get(p, 3 * MIB);
    CHECK(b != a);
    slp_bufpool_put(p, b);
    unsigned char *c = slp_bufpool_get(p, 5 * MIB);
    CHECK(c == a);
    slp_bufpool_stats(p, &st);
    CHECK(st.hits == 1 && st.misses == 2);
    slp_bufpool_put(p, c);
    /* small blocks are malloc's own business; a block over max_buffer is freed */
    void *s = slp_bufpool_get(p, 1000);
    slp_bufpool_put(p, s);
    void *h = slp_bufpool_get(p, 65 * MIB);
    CHECK(h != NULL);
    slp_bufpool_put(p, h);
    slp_bufpool_stats(p, &st);
    CHECK(st.kept == 2); /* the 8 MiB and the 3 MiB blocks */
    CHECK(st.kept_bytes < 12 * MIB);
    slp_bufpool_free(p);
}

/* The cap: twice the most bytes out at once lately, never over max_keep; after two windows
 * (128 takes) of small takes the old large blocks go. */
static void test_cap(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 20 * MIB);
    void *b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = slp_bufpool_get(p, 8 * MIB); /* 32 MiB out at once */
    }
    for (int i = 0; i < 4; i++) {
        slp_bufpool_put(p, b[i]);
    }
    struct slp_bufpool_stats st;
    slp_bufpool_stats(p, &st);
    /* max_keep 20 MiB: two of the four 8 MiB blocks */
    CHECK_INT(st.kept, 2);
    CHECK(st.kept_bytes <= 20 * MIB);
    for (int i = 0; i < 130; i++) {
        slp_bufpool_put(p, slp_bufpool_get(p, 300 * KIB));
    }
    slp_bufpool_stats(p, &st);
    /* the peak is now about 300 KiB: nothing of 8 MiB fits under twice that */
    CHECK(st.kept_bytes <= 2 * 512 * KIB);
    slp_bufpool_free(p);
}

static void test_grow_keeps_bytes(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 256 * MIB);
    unsigned char *big = slp_bufpool_get(p, 4 * MIB);
    slp_bufpool_put(p, big); /* kept: the next grow to 3 MiB lands there */
    unsigned char *g = slp_bufpool_get(p, 300 * KIB);
    for (size_t i = 0; i < 300 * KIB; i++) {
        g[i] = (unsigned char)(i * 7);
    }
    unsigned char *g2 = slp_bufpool_grow(p, g, 300 * KIB, 3 * MIB);
    CHECK(g2 == big);
    int bad = 0;
    for (size_t i = 0; i < 300 * KIB; i++) {
        bad += g2[i] != (unsigned char)(i * 7);
    }
    CHECK_INT(bad, 0);
    /* no kept block fits: realloc, bytes kept too */
    unsigned char *g3 = slp_bufpool_grow(p, g2, 3 * MIB, 40 * MIB);
    CHECK(g3 != NULL && g3[299 * KIB] == (unsigned char)(299 * KIB * 7));
    slp_bufpool_put(p, g3);
    slp_bufpool_free(p);
}

/* A pooled dynbuf gives its block back on free, forgets it on take. */
static void test_dynbuf_pool(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 256 * MIB);
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 16 * MIB);
    b.pool = p;
    CHECK(slp_dynbuf_room(&b, 2 * MIB) != NULL);
    char *first = b.data;
    memset(first, 'x', 2 * MIB);
    slp_dynbuf_commit(&b, 2 * MIB);
    slp_dynbuf_free(&b);
    CHECK(b.pool == p && b.data == NULL);
    struct slp_bufpool_stats st;
    slp_bufpool_stats(p, &st);
    CHECK(st.kept == 1 && st.out_bytes == 0);
    CHECK(slp_dynbuf_room(&b, 2 * MIB) != NULL);
    CHECK(b.data == first);
    slp_dynbuf_commit(&b, 10);
    size_t n = 0;
    char *d = slp_dynbuf_take(&b, &n);
    CHECK(d == first && n == 10 && b.pool == p);
    slp_bufpool_stats(p, &st);
    CHECK(st.out_bytes == 0 && st.kept == 0);
    free(d);
    slp_bufpool_free(p);
}

/* Arrays decoded with limits holding a pool take their buffer from it and give it back. */
static void test_array_pool(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 256 * MIB);
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.bufs = p;
    /* a raw uint8 array of 300 KiB of zeros, base64 "AAAA" per 3 bytes */
    const size_t n = 300 * KIB;
    char *b64 = malloc(n / 3 * 4 + 1);
    memset(b64, 'A', n / 3 * 4);
    b64[n / 3 * 4] = '\0';
    char *js = malloc(n / 3 * 4 + 200);
    snprintf(js, n / 3 * 4 + 200,
             "{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [%zu], \"data\": \"%s\"}", n,
             b64);
    json_t *j = json_loads(js, 0, NULL);
    void *first = NULL;
    for (int k = 0; k < 3; k++) {
        struct slp_array a;
        char msg[256];
        CHECK_INT(slp_array_from_json(j, "target", &lim, &a, msg, sizeof msg), 0);
        CHECK(a.pool == p && a.t.shape[0] == (int64_t)n && ((const uint8_t *)a.t.data)[n - 1] == 0);
        if (k == 0) {
            first = a.buf;
        } else {
            CHECK(a.buf == first);
        }
        slp_array_free(&a);
    }
    struct slp_bufpool_stats st;
    slp_bufpool_stats(p, &st);
    CHECK(st.hits == 2 && st.out_bytes == 0);
    json_decref(j);
    free(js);
    free(b64);
    slp_bufpool_free(p);
}

struct worker {
    struct slp_bufpool *p;
    int id;
    int bad;
};

/* Takes blocks of varying sizes, fills each with its own id, yields, and checks that no one
 * else wrote into it before giving it back. */
static void *hammer(void *arg)
{
    struct worker *w = arg;
    uint32_t s = (uint32_t)w->id * 2654435761u + 1;
    for (int i = 0; i < 300; i++) {
        s = s * 1103515245u + 12345u;
        const size_t n = 256 * KIB + (s >> 8) % (2 * MIB);
        unsigned char *b = slp_bufpool_get(w->p, n);
        if (!b) {
            w->bad++;
            continue;
        }
        memset(b, w->id, n);
        sched_yield();
        if (i % 3 == 0) {
            unsigned char *g = slp_bufpool_grow(w->p, b, n, n + 300 * KIB);
            if (g) {
                b = g;
                memset(b + n, w->id, 300 * KIB);
            }
        }
        w->bad += b[0] != w->id || b[n / 2] != w->id || b[n - 1] != w->id;
        slp_bufpool_put(w->p, b);
    }
    return NULL;
}

static void test_threads(void)
{
    struct slp_bufpool *p = slp_bufpool_new(256 * KIB, 64 * MIB, 64 * MIB);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){p, i + 1, 0};
        CHECK(pthread_create(&t[i], NULL, hammer, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].bad, 0);
    }
    struct slp_bufpool_stats st;
    slp_bufpool_stats(p, &st);
    CHECK(st.out_bytes == 0 && st.hits > 0 && st.kept_bytes <= 64 * MIB);
    slp_bufpool_free(p);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_null_pool),        CHECK_TEST(test_reuse),       CHECK_TEST(test_cap),
    CHECK_TEST(test_grow_keeps_bytes), CHECK_TEST(test_dynbuf_pool), CHECK_TEST(test_array_pool),
    CHECK_TEST(test_threads),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_bufpool", tests);
}
