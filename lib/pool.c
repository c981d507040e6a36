/* pool.c - the worker pool: a bounded FIFO of jobs served by N threads, plus a fork-join
 * parallel-for that the calling thread drives and idle workers join.
 *
 * One mutex guards the job ring, the list of open parallel-fors and the counters. Indices of
 * a parallel-for are claimed with an atomic counter, so helpers only take the mutex to join
 * and to leave. A worker prefers helping an open parallel-for over starting a new job: the
 * parallel-for belongs to a request that is already running, finishing it first keeps
 * latency down and frees its memory sooner.
 *
 * Deadlock freedom: the caller of sl_pool_parallel_for claims indices itself until none are
 * left, so it never waits for a worker to start anything; it only waits for helpers that
 * have already claimed indices to finish them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "segloss.h"

/* Upper bound on workers: more than this is a configuration mistake, not a machine. */
#define POOL_MAX_THREADS 4096

struct pool_job {
    void (*fn)(void *);
    void *arg;
};

/* One open parallel-for; lives on the caller's stack until every helper has left it. */
struct pool_pfor {
    void (*fn)(void *, int64_t);
    void *arg;
    int64_t n;
    int64_t grain;          /* indices claimed at once */
    _Atomic int64_t next;   /* first unclaimed index */
    int helpers;            /* workers inside it (pool mutex) */
    bool linked;            /* on the pool's open list (pool mutex) */
    struct pool_pfor *prev; /* open list links (pool mutex) */
    struct pool_pfor *next_open;
};

struct sl_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers: a job, a parallel-for, or stop */
    pthread_cond_t done_cv; /* parallel-for callers: a helper left */
    int nthreads;
    pthread_t *threads;
    struct pool_job *ring;
    int cap;
    int head;  /* index of the oldest queued job */
    int count; /* queued jobs */
    int running;
    int idle; /* workers waiting on work_cv */
    bool stopping;
    struct pool_pfor *open_head; /* parallel-fors with indices left, oldest first */
    struct pool_pfor *open_tail;
};

static void pfor_unlink(struct sl_pool *p, struct pool_pfor *f)
{
    if (!f->linked) {
        return;
    }
    if (f->prev) {
        f->prev->next_open = f->next_open;
    } else {
        p->open_head = f->next_open;
    }
    if (f->next_open) {
        f->next_open->prev = f->prev;
    } else {
        p->open_tail = f->prev;
    }
    f->prev = f->next_open = NULL;
    f->linked = false;
}

/* Claims and runs chunks of f until none are left. Called without the pool mutex. */
static void pfor_run(struct pool_pfor *f)
{
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&f->next, f->grain, memory_order_relaxed);
        if (i >= f->n) {
            return;
        }
        int64_t end = f->n - i < f->grain ? f->n : i + f->grain;
        for (; i < end; i++) {
            f->fn(f->arg, i);
        }
    }
}

static void *worker_main(void *arg)
{
    struct sl_pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct pool_pfor *f = p->open_head;
        if (f) {
            if (atomic_load_explicit(&f->next, memory_order_relaxed) >= f->n) {
                /* Nothing left to claim: take it off the list so nobody else looks. */
                pfor_unlink(p, f);
                continue;
            }
            f->helpers++;
            pthread_mutex_unlock(&p->mu);
            pfor_run(f);
            pthread_mutex_lock(&p->mu);
            f->helpers--;
            pfor_unlink(p, f);
            if (f->helpers == 0) {
                pthread_cond_broadcast(&p->done_cv);
            }
            continue;
        }
        if (p->count > 0) {
            struct pool_job job = p->ring[p->head];
            p->head = (p->head + 1) % p->cap;
            p->count--;
            p->running++;
            pthread_mutex_unlock(&p->mu);
            job.fn(job.arg);
            pthread_mutex_lock(&p->mu);
            p->running--;
            continue;
        }
        if (p->stopping) {
            break;
        }
        p->idle++;
        pthread_cond_wait(&p->work_cv, &p->mu);
        p->idle--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Creates the pool and starts its workers; returns NULL on a bad argument or a failure. */
struct sl_pool *sl_pool_new(int nthreads, int queue_cap)
{
    if (nthreads < 0 || queue_cap < 1) {
        return NULL;
    }
    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n < 1 ? 1 : (n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n);
    }
    if (nthreads > POOL_MAX_THREADS) {
        return NULL;
    }

    struct sl_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->ring = calloc((size_t)queue_cap, sizeof(*p->ring));
    if (!p->ring) {
        goto free_pool;
    }
    p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
    if (!p->threads) {
        goto free_ring;
    }
    p->cap = queue_cap;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        goto free_threads;
    }
    if (pthread_cond_init(&p->work_cv, NULL) != 0) {
        goto destroy_mu;
    }
    if (pthread_cond_init(&p->done_cv, NULL) != 0) {
        goto destroy_work_cv;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            /* Stop and join the ones already running, then undo the rest. */
            p->nthreads = i;
            sl_pool_free(p);
            return NULL;
        }
    }
    p->nthreads = nthreads;
    return p;

destroy_work_cv:
    pthread_cond_destroy(&p->work_cv);
destroy_mu:
    pthread_mutex_destroy(&p->mu);
free_threads:
    free(p->threads);
free_ring:
    free(p->ring);
free_pool:
    free(p);
    return NULL;
}

/* Lets every queued job run, joins the workers and frees the pool. NULL is fine. */
void sl_pool_free(struct sl_pool *pool)
{
    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->nthreads; i++) {
        pthread_join(pool->threads[i], NULL);
    }
    pthread_cond_destroy(&pool->done_cv);
    pthread_cond_destroy(&pool->work_cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool->ring);
    free(pool);
}

/* Number of worker threads (0 for NULL). */
int sl_pool_threads(const struct sl_pool *pool)
{
    return pool ? pool->nthreads : 0;
}

/* Queues fn(arg); returns 0, or SL_EBUSY when the queue is full or the pool is stopping,
 * SL_EINVAL for a NULL pool or fn. Never blocks beyond the pool mutex. */
int sl_pool_submit(struct sl_pool *pool, void (*fn)(void *), void *arg)
{
    if (!pool || !fn) {
        return SL_EINVAL;
    }
    pthread_mutex_lock(&pool->mu);
    if (pool->stopping || pool->count == pool->cap) {
        pthread_mutex_unlock(&pool->mu);
        return SL_EBUSY;
    }
    int tail = (pool->head + pool->count) % pool->cap;
    pool->ring[tail].fn = fn;
    pool->ring[tail].arg = arg;
    pool->count++;
    if (pool->idle > 0) {
        pthread_cond_signal(&pool->work_cv);
    }
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

/* Reports queued (not started) and running jobs; either pointer may be NULL. */
void sl_pool_load(struct sl_pool *pool, int *queued, int *running)
{
    int q = 0;
    int r = 0;
    if (pool) {
        pthread_mutex_lock(&pool->mu);
        q = pool->count;
        r = pool->running;
        pthread_mutex_unlock(&pool->mu);
    }
    if (queued) {
        *queued = q;
    }
    if (running) {
        *running = r;
    }
}

/* Runs fn(arg, i) for every i in [0, n) on the caller and idle workers; returns when all ran.
 * Safe from inside a job; with every worker busy the caller does all the work. */
void sl_pool_parallel_for(struct sl_pool *pool, int64_t n, void (*fn)(void *, int64_t), void *arg)
{
    if (n <= 0) {
        return;
    }
    if (!pool || n == 1 || pool->nthreads == 0) {
        for (int64_t i = 0; i < n; i++) {
            fn(arg, i);
        }
        return;
    }

    struct pool_pfor f = {.fn = fn, .arg = arg, .n = n};
    /* Chunks of about 1/8 of a fair share: few atomics for cheap bodies, balance for
     * expensive ones (with n <= 8 * threads every index is its own chunk). */
    int64_t parts = 8 * ((int64_t)pool->nthreads + 1);
    f.grain = n / parts > 0 ? n / parts : 1;
    atomic_init(&f.next, 0);

    pthread_mutex_lock(&pool->mu);
    f.prev = pool->open_tail;
    if (pool->open_tail) {
        pool->open_tail->next_open = &f;
    } else {
        pool->open_head = &f;
    }
    pool->open_tail = &f;
    f.linked = true;
    /* Wake at most as many idle workers as there are chunks beyond the caller's first. */
    int64_t want = (n + f.grain - 1) / f.grain - 1;
    if (want >= pool->idle) {
        pthread_cond_broadcast(&pool->work_cv);
    } else {
        for (int64_t i = 0; i < want; i++) {
            pthread_cond_signal(&pool->work_cv);
        }
    }
    pthread_mutex_unlock(&pool->mu);

    pfor_run(&f);

    pthread_mutex_lock(&pool->mu);
    pfor_unlink(pool, &f);
    while (f.helpers > 0) {
        pthread_cond_wait(&pool->done_cv, &pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
}
