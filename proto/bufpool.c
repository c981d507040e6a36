/* bufpool.c - the pool of large reusable buffers of bufpool.h. */
#include "bufpool.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Blocks kept at most, and takes per window of the "largest out at once" mark. */
#define POOL_SLOTS 16
#define POOL_WINDOW 64

struct slot {
    void *p;
    size_t size;
    uint64_t stamp; /* the take count when it came back: the oldest goes first */
};

struct slp_bufpool {
    pthread_mutex_t mu;
    size_t min_size, max_buffer, max_keep;
    struct slot slot[POOL_SLOTS];
    int n;
    size_t kept;                /* bytes in slot[] */
    size_t out;                 /* bytes of blocks of min_size or more taken and not back */
    size_t peak_cur, peak_prev; /* the most `out` reached in this window and the previous */
    uint64_t takes, hits, misses;
};

struct slp_bufpool *slp_bufpool_new(size_t min_size, size_t max_buffer, size_t max_keep)
{
    struct slp_bufpool *p = calloc(1, sizeof *p);
    if (!p) {
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->min_size = min_size;
    p->max_buffer = max_buffer;
    p->max_keep = max_keep;
    return p;
}

void slp_bufpool_free(struct slp_bufpool *p)
{
    if (!p) {
        return;
    }
    for (int i = 0; i < p->n; i++) {
        free(p->slot[i].p);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Bytes the pool may keep now (p->mu held). */
static size_t keep_cap(const struct slp_bufpool *p)
{
    size_t peak = p->peak_cur > p->peak_prev ? p->peak_cur : p->peak_prev;
    size_t cap = peak > SIZE_MAX / 2 ? SIZE_MAX : 2 * peak;
    return cap < p->max_keep ? cap : p->max_keep;
}

/* Removes slot i, returning its block (p->mu held). */
static void *slot_take(struct slp_bufpool *p, int i)
{
    void *b = p->slot[i].p;
    p->kept -= p->slot[i].size;
    p->slot[i] = p->slot[--p->n];
    return b;
}

/* Moves the oldest kept blocks to victims[] until `more` bytes fit under the cap beside the
 * kept ones and a slot is free (p->mu held). Returns how many were moved. */
static int evict(struct slp_bufpool *p, size_t more, void **victims)
{
    int nv = 0;
    const size_t cap = keep_cap(p);
    while (p->n > 0 && (p->n == POOL_SLOTS || p->kept + more > cap)) {
        int old = 0;
        for (int i = 1; i < p->n; i++) {
            if (p->slot[i].stamp < p->slot[old].stamp) {
                old = i;
            }
        }
        victims[nv++] = slot_take(p, old);
    }
    return nv;
}

static void free_all(void **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
}

/* Counts a block of size bytes as taken (p->mu held): the window's mark, and at the end of a
 * window the cap shrinks to what the last two windows needed. Victims as in evict. */
static int note_taken(struct slp_bufpool *p, size_t size, void **victims)
{
    p->out += size;
    if (p->out > p->peak_cur) {
        p->peak_cur = p->out;
    }
    if (++p->takes % POOL_WINDOW == 0) {
        p->peak_prev = p->peak_cur;
        p->peak_cur = p->out;
        return evict(p, 0, victims);
    }
    return 0;
}

/* The kept block that best fits n bytes (the smallest of n to 2n), or -1 (p->mu held). */
static int best_fit(const struct slp_bufpool *p, size_t n)
{
    int best = -1;
    for (int i = 0; i < p->n; i++) {
        const size_t s = p->slot[i].size;
        if (s >= n && s / 2 <= n && (best < 0 || s < p->slot[best].size)) {
            best = i;
        }
    }
    return best;
}

void *slp_bufpool_get(struct slp_bufpool *p, size_t n)
{
    if (!p || n < p->min_size) {
        return malloc(n ? n : 1);
    }
    void *victims[POOL_SLOTS];
    int nv = 0;
    pthread_mutex_lock(&p->mu);
    int i = best_fit(p, n);
    void *b = NULL;
    if (i >= 0) {
        const size_t size = p->slot[i].size;
        b = slot_take(p, i);
        p->hits++;
        nv = note_taken(p, size, victims);
    } else {
        p->misses++;
    }
    pthread_mutex_unlock(&p->mu);
    free_all(victims, nv);
    if (b) {
        return b;
    }
    b = malloc(n);
    if (!b) {
        /* memory is short: give back everything kept, then try once more */
        pthread_mutex_lock(&p->mu);
        nv = 0;
        while (p->n > 0) {
            victims[nv++] = slot_take(p, p->n - 1);
        }
        pthread_mutex_unlock(&p->mu);
        free_all(victims, nv);
        b = malloc(n);
        if (!b) {
            return NULL;
        }
    }
    pthread_mutex_lock(&p->mu);
    nv = note_taken(p, malloc_usable_size(b), victims);
    pthread_mutex_unlock(&p->mu);
    free_all(victims, nv);
    return b;
}

/* Counts size bytes as back from the taker (p->mu held). */
static void note_back(struct slp_bufpool *p, size_t size)
{
    p->out -= size < p->out ? size : p->out;
}

void slp_bufpool_put(struct slp_bufpool *p, void *buf)
{
    if (!p || !buf) {
        free(buf);
        return;
    }
    const size_t size = malloc_usable_size(buf);
    if (size < p->min_size) {
        free(buf);
        return;
    }
    void *victims[POOL_SLOTS];
    pthread_mutex_lock(&p->mu);
    note_back(p, size);
    bool keep = size <= p->max_buffer && size <= keep_cap(p);
    int nv = keep ? evict(p, size, victims) : 0;
    if (keep) {
        p->slot[p->n].p = buf;
        p->slot[p->n].size = size;
        p->slot[p->n].stamp = p->takes;
        p->n++;
        p->kept += size;
    }
    pthread_mutex_unlock(&p->mu);
    free_all(victims, nv);
    if (!keep) {
        free(buf);
    }
}

void slp_bufpool_forget(struct slp_bufpool *p, const void *buf)
{
    if (!p || !buf) {
        return;
    }
    const size_t size = malloc_usable_size((void *)buf);
    if (size >= p->min_size) {
        pthread_mutex_lock(&p->mu);
        note_back(p, size);
        pthread_mutex_unlock(&p->mu);
    }
}

void *slp_bufpool_grow(struct slp_bufpool *p, void *buf, size_t used, size_t n)
{
    if (!buf) {
        return slp_bufpool_get(p, n);
    }
    if (!p) {
        return realloc(buf, n);
    }
    const size_t old = malloc_usable_size(buf);
    if (old >= n) {
        return buf;
    }
    if (n >= p->min_size) {
        /* a kept block that fits: copy what is used, give the old one back */
        pthread_mutex_lock(&p->mu);
        const bool fits = best_fit(p, n) >= 0;
        pthread_mutex_unlock(&p->mu);
        if (fits) {
            void *b = slp_bufpool_get(p, n);
            if (b) {
                memcpy(b, buf, used);
                slp_bufpool_put(p, buf);
                return b;
            }
        }
    }
    void *b = realloc(buf, n);
    if (b) {
        pthread_mutex_lock(&p->mu);
        if (old >= p->min_size) {
            note_back(p, old);
        }
        void *victims[POOL_SLOTS];
        int nv = 0;
        const size_t size = malloc_usable_size(b);
        if (size >= p->min_size) {
            nv = note_taken(p, size, victims);
        }
        pthread_mutex_unlock(&p->mu);
        free_all(victims, nv);
    }
    return b;
}

void slp_bufpool_stats(struct slp_bufpool *p, struct slp_bufpool_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    st->kept = p->n;
    st->kept_bytes = p->kept;
    st->out_bytes = p->out;
    st->hits = p->hits;
    st->misses = p->misses;
    pthread_mutex_unlock(&p->mu);
}
