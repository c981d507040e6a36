/* test_pool.c - the worker pool: jobs run once, a full queue is SL_EBUSY, parallel_for covers
 * every index once (also nested inside a job while every worker is busy), free drains. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "segloss.h"

/* A door jobs wait at until the test opens it. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
}

static void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until the gate opens or timeout_ms passes; returns whether it opened. */
static bool gate_wait(struct gate *g, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    while (!g->open) {
        if (pthread_cond_timedwait(&g->cv, &g->mu, &until) != 0) {
            break;
        }
    }
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    return open;
}

static void job_block(void *arg)
{
    gate_wait(arg, 10000);
}

static void job_count(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Waits (up to 5 s) until the pool runs `running` jobs; returns whether it did. */
static bool wait_running(struct sl_pool *pool, int running)
{
    for (int i = 0; i < 5000; i++) {
        int r;
        sl_pool_load(pool, NULL, &r);
        if (r == running) {
            return true;
        }
        usleep(1000);
    }
    return false;
}

struct slot_job {
    _Atomic int *slots;
    int i;
};

static void job_slot(void *arg)
{
    struct slot_job *j = arg;
    atomic_fetch_add(&j->slots[j->i], 1);
}

static void test_new_and_threads(void)
{
    CHECK(sl_pool_new(-1, 4) == NULL);
    CHECK(sl_pool_new(2, 0) == NULL);
    sl_pool_free(NULL);
    CHECK_INT(sl_pool_threads(NULL), 0);

    struct sl_pool *p = sl_pool_new(3, 4);
    CHECK(p != NULL);
    CHECK_INT(sl_pool_threads(p), 3);
    sl_pool_free(p);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p = sl_pool_new(0, 4);
    CHECK(p != NULL);
    CHECK_INT(sl_pool_threads(p), cores < 1 ? 1 : cores);
    sl_pool_free(p);
}

static void test_submit_once(void)
{
    enum { NJOBS = 2000 };
    static _Atomic int slots[NJOBS];
    static struct slot_job jobs[NJOBS];
    struct sl_pool *p = sl_pool_new(4, NJOBS);
    CHECK(p != NULL);
    int rejected = 0;
    for (int i = 0; i < NJOBS; i++) {
        atomic_init(&slots[i], 0);
        jobs[i].slots = slots;
        jobs[i].i = i;
        if (sl_pool_submit(p, job_slot, &jobs[i]) != 0) {
            rejected++;
        }
    }
    CHECK_INT(rejected, 0);
    sl_pool_free(p);
    int once = 0;
    for (int i = 0; i < NJOBS; i++) {
        once += atomic_load(&slots[i]) == 1;
    }
    CHECK_INT(once, NJOBS);
}

static void test_full_queue(void)
{
    struct gate g;
    gate_init(&g);
    _Atomic int count = 0;
    struct sl_pool *p = sl_pool_new(1, 2);
    CHECK(p != NULL);
    CHECK_INT(sl_pool_submit(p, job_block, &g), 0);
    CHECK(wait_running(p, 1));
    CHECK_INT(sl_pool_submit(p, job_count, &count), 0);
    CHECK_INT(sl_pool_submit(p, job_count, &count), 0);
    CHECK_INT(sl_pool_submit(p, job_count, &count), SL_EBUSY);
    CHECK_INT(sl_pool_submit(p, job_count, &count), SL_EBUSY);
    int queued, running;
    sl_pool_load(p, &queued, &running);
    CHECK_INT(queued, 2);
    CHECK_INT(running, 1);
    CHECK_INT(atomic_load(&count), 0);
    gate_open(&g);
    sl_pool_free(p);
    CHECK_INT(atomic_load(&count), 2); /* the two rejected jobs never ran */
    gate_destroy(&g);
}

static void *open_later(void *arg)
{
    usleep(100 * 1000);
    gate_open(arg);
    return NULL;
}

static void test_free_drains(void)
{
    struct gate g;
    gate_init(&g);
    _Atomic int count = 0;
    struct sl_pool *p = sl_pool_new(1, 16);
    CHECK(p != NULL);
    CHECK_INT(sl_pool_submit(p, job_block, &g), 0);
    CHECK(wait_running(p, 1));
    for (int i = 0; i < 10; i++) {
        CHECK_INT(sl_pool_submit(p, job_count, &count), 0);
    }
    /* free is called while all ten are still queued behind the blocked job */
    pthread_t t;
    pthread_create(&t, NULL, open_later, &g);
    sl_pool_free(p);
    CHECK_INT(atomic_load(&count), 10);
    pthread_join(t, NULL);
    gate_destroy(&g);
}

/* parallel_for bookkeeping: hits[i] counts calls of index i, threads records who ran them. */
struct cover {
    _Atomic int *hits;
    int64_t n;
    _Atomic int calls;
    pthread_t seen[64];
    _Atomic int nseen;
    pthread_mutex_t mu;
    int sleep_us;
};

static void cover_fn(void *arg, int64_t i)
{
    struct cover *c = arg;
    atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_add(&c->calls, 1);
    pthread_t self = pthread_self();
    pthread_mutex_lock(&c->mu);
    int k, n = atomic_load(&c->nseen);
    for (k = 0; k < n && !pthread_equal(c->seen[k], self); k++) {
    }
    if (k == n && n < 64) {
        c->seen[n] = self;
        atomic_store(&c->nseen, n + 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (c->sleep_us) {
        usleep((useconds_t)c->sleep_us);
    }
}

static struct cover *cover_new(int64_t n, int sleep_us)
{
    struct cover *c = calloc(1, sizeof(*c));
    c->hits = calloc((size_t)(n > 0 ? n : 1), sizeof(*c->hits));
    c->n = n;
    c->sleep_us = sleep_us;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

/* Number of indices hit exactly once. */
static int64_t cover_once(const struct cover *c)
{
    int64_t once = 0;
    for (int64_t i = 0; i < c->n; i++) {
        once += atomic_load(&c->hits[i]) == 1;
    }
    return once;
}

static void cover_free(struct cover *c)
{
    pthread_mutex_destroy(&c->mu);
    free(c->hits);
    free(c);
}

static void check_cover(struct sl_pool *p, int64_t n)
{
    struct cover *c = cover_new(n, 0);
    sl_pool_parallel_for(p, n, cover_fn, c);
    CHECK_INT(cover_once(c), n);
    CHECK_INT(atomic_load(&c->calls), n);
    cover_free(c);
}

static void test_parallel_for_cover(void)
{
    int64_t sizes[] = {0, 1, 2, 7, 1000, 100003};
    struct sl_pool *p = sl_pool_new(4, 8);
    CHECK(p != NULL);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        check_cover(NULL, sizes[k]);
        check_cover(p, sizes[k]);
    }

    /* n == 1 runs on the caller itself */
    struct cover *c = cover_new(1, 0);
    sl_pool_parallel_for(p, 1, cover_fn, c);
    CHECK_INT(atomic_load(&c->nseen), 1);
    CHECK(pthread_equal(c->seen[0], pthread_self()));
    cover_free(c);

    /* slow bodies: idle workers join in */
    c = cover_new(64, 2000);
    sl_pool_parallel_for(p, 64, cover_fn, c);
    CHECK_INT(cover_once(c), 64);
    CHECK(atomic_load(&c->nseen) > 1);
    cover_free(c);
    sl_pool_free(p);
}

/* A job that runs a parallel_for of n indices and then opens its gate. */
struct nested_job {
    struct sl_pool *pool;
    struct cover *cover;
    struct gate done;
};

static void job_nested(void *arg)
{
    struct nested_job *j = arg;
    sl_pool_parallel_for(j->pool, j->cover->n, cover_fn, j->cover);
    gate_open(&j->done);
}

static void test_parallel_for_nested_busy(void)
{
    /* Two workers: one blocked at a gate, one running the job that calls parallel_for. No
     * worker is free to help, so the job must finish all 1000 indices by itself. */
    struct gate block;
    gate_init(&block);
    struct sl_pool *p = sl_pool_new(2, 4);
    CHECK(p != NULL);
    CHECK_INT(sl_pool_submit(p, job_block, &block), 0);
    CHECK(wait_running(p, 1));

    struct nested_job j = {.pool = p, .cover = cover_new(1000, 0)};
    gate_init(&j.done);
    CHECK_INT(sl_pool_submit(p, job_nested, &j), 0);
    CHECK(gate_wait(&j.done, 10000));
    CHECK_INT(cover_once(j.cover), 1000);
    CHECK_INT(atomic_load(&j.cover->nseen), 1);
    gate_open(&block);
    sl_pool_free(p);
    cover_free(j.cover);
    gate_destroy(&j.done);
    gate_destroy(&block);
}

static void test_parallel_for_nested_all_jobs(void)
{
    /* Every worker runs a job that calls parallel_for at the same time: each must finish. */
    enum { NW = 3 };
    struct sl_pool *p = sl_pool_new(NW, 2 * NW);
    CHECK(p != NULL);
    struct nested_job j[2 * NW];
    for (int k = 0; k < 2 * NW; k++) {
        j[k].pool = p;
        j[k].cover = cover_new(1000, k % 2 ? 50 : 0);
        gate_init(&j[k].done);
        CHECK_INT(sl_pool_submit(p, job_nested, &j[k]), 0);
    }
    for (int k = 0; k < 2 * NW; k++) {
        CHECK(gate_wait(&j[k].done, 20000));
        CHECK_INT(cover_once(j[k].cover), 1000);
    }
    sl_pool_free(p);
    for (int k = 0; k < 2 * NW; k++) {
        cover_free(j[k].cover);
        gate_destroy(&j[k].done);
    }
}

/* parallel_for whose body runs another parallel_for (a request that splits images into rows). */
struct outer {
    struct sl_pool *pool;
    struct cover *inner[16];
};

static void outer_fn(void *arg, int64_t i)
{
    struct outer *o = arg;
    sl_pool_parallel_for(o->pool, o->inner[i]->n, cover_fn, o->inner[i]);
}

static void *external_caller(void *arg)
{
    struct outer *o = arg;
    sl_pool_parallel_for(o->pool, 16, outer_fn, o);
    return NULL;
}

static void test_parallel_for_nested_loops(void)
{
    struct sl_pool *p = sl_pool_new(4, 4);
    CHECK(p != NULL);
    /* two external threads at once, each a two-level loop */
    struct outer o[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        o[k].pool = p;
        for (int i = 0; i < 16; i++) {
            o[k].inner[i] = cover_new(257 + i, 0);
        }
        pthread_create(&t[k], NULL, external_caller, &o[k]);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
        int64_t ok = 0;
        for (int i = 0; i < 16; i++) {
            ok += cover_once(o[k].inner[i]) == 257 + i;
            cover_free(o[k].inner[i]);
        }
        CHECK_INT(ok, 16);
    }
    sl_pool_free(p);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_new_and_threads),
    CHECK_TEST(test_submit_once),
    CHECK_TEST(test_full_queue),
    CHECK_TEST(test_free_drains),
    CHECK_TEST(test_parallel_for_cover),
    CHECK_TEST(test_parallel_for_nested_busy),
    CHECK_TEST(test_parallel_for_nested_all_jobs),
    CHECK_TEST(test_parallel_for_nested_loops),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_pool", tests);
}
