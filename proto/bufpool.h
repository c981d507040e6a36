/* bufpool.h - large buffers kept between requests, so that a request does not pay the
 * first-touch page faults of fresh memory (glibc maps every block above its mmap threshold, at
 * most 32 MiB, afresh and unmaps it on free: about 1 fault per 4 KiB written).
 *
 * A pool holds free blocks; a block is always an ordinary malloc'd block (its size is what
 * malloc_usable_size says), so whoever holds one may also free() it. Taking and returning are
 * done under the pool's mutex, so any thread may use the pool, and a block out of the pool
 * belongs to its taker alone: two requests never share a buffer. What is kept: blocks of at
 * least min_size and at most max_buffer bytes, at most twice the largest number of bytes that
 * were out at once over the last 64 to 128 takes, and never more than max_keep bytes in all;
 * the oldest go first. A failed malloc empties the pool and tries once more.
 *
 * Ownership: slp_bufpool_new's caller frees the pool with slp_bufpool_free after every block
 * taken from it has come back or been freed. Every function takes a NULL pool as "no pool":
 * plain malloc/realloc/free. */
#ifndef SLP_BUFPOOL_H
#define SLP_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

struct slp_bufpool;

/* A new empty pool (NULL when out of memory); see above for the three sizes. */
struct slp_bufpool *slp_bufpool_new(size_t min_size, size_t max_buffer, size_t max_keep);
/* Frees every kept block and the pool. NULL is fine. */
void slp_bufpool_free(struct slp_bufpool *p);
/* A block of at least n bytes (contents undefined): a kept one of n to 2n bytes when there is
 * one, else malloc's. NULL when out of memory. The caller owns it until slp_bufpool_put. */
void *slp_bufpool_get(struct slp_bufpool *p, size_t n);
/* Gives back a block (from this pool or any malloc'd one): kept, or freed. NULL is fine. */
void slp_bufpool_put(struct slp_bufpool *p, void *buf);
/* realloc for pooled blocks: buf (NULL or malloc'd, its first `used` bytes in use) grown to at
 * least n bytes, into a kept block when one fits (buf then goes back), else by realloc. NULL
 * when out of memory (buf is then still the caller's). */
void *slp_bufpool_grow(struct slp_bufpool *p, void *buf, size_t used, size_t n);
/* Tells the pool that buf, taken from it, will be freed by someone else (slp_dynbuf_take). */
void slp_bufpool_forget(struct slp_bufpool *p, const void *buf);

/* What a pool holds and has done (for tests and benchmarks). */
struct slp_bufpool_stats {
    int kept;          /* blocks kept */
    size_t kept_bytes; /* their bytes */
    size_t out_bytes;  /* bytes of taken blocks not yet back */
    uint64_t hits;     /* takes served by a kept block */
    uint64_t misses;   /* takes of at least min_size served by malloc */
};
void slp_bufpool_stats(struct slp_bufpool *p, struct slp_bufpool_stats *st);

#endif
