/* dynbuf.c - the capped growable buffer of dynbuf.h. */
#include "dynbuf.h"

#include "bufpool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segloss.h"

/* Smallest allocation: most answers and bodies fit without a second realloc. */
#define DYNBUF_MIN 256

void slp_dynbuf_init(struct slp_dynbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

char *slp_dynbuf_room(struct slp_dynbuf *b, size_t n)
{
    if (b->err) {
        return NULL;
    }
    if (n > b->max - b->len) {
        b->err = SL_ETOOLARGE;
        return NULL;
    }
    if (b->len + n + 1 > b->cap) {
        /* double, but never past max + 1 (the NUL) */
        size_t cap = b->cap ? b->cap : DYNBUF_MIN;
        while (cap < b->len + n + 1) {
            cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        }
        if (cap > b->max + 1) {
            cap = b->max + 1;
        }
        char *d = slp_bufpool_grow(b->pool, b->data, b->data ? b->len + 1 : 0, cap);
        if (!d) {
            b->err = SL_ENOMEM;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

void slp_dynbuf_commit(struct slp_dynbuf *b, size_t n)
{
    if (!b->err && b->data) {
        b->len += n;
        b->data[b->len] = '\0';
    }
}

int slp_dynbuf_add(struct slp_dynbuf *b, const void *p, size_t n)
{
    char *at = slp_dynbuf_room(b, n);
    if (!at) {
        return b->err;
    }
    if (n) {
        memcpy(at, p, n);
    }
    slp_dynbuf_commit(b, n);
    return 0;
}

int slp_dynbuf_adds(struct slp_dynbuf *b, const char *s)
{
    return slp_dynbuf_add(b, s, strlen(s));
}

int slp_dynbuf_addf(struct slp_dynbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return b->err ? b->err : (b->err = SL_EINTERNAL);
    }
    if ((size_t)n < sizeof small) {
        return slp_dynbuf_add(b, small, (size_t)n);
    }
    char *at = slp_dynbuf_room(b, (size_t)n);
    if (!at) {
        return b->err;
    }
    va_start(ap, fmt);
    vsnprintf(at, (size_t)n + 1, fmt, ap);
    va_end(ap);
    slp_dynbuf_commit(b, (size_t)n);
    return 0;
}

char *slp_dynbuf_take(struct slp_dynbuf *b, size_t *len)
{
    char *d = b->data;
    if (!d) {
        d = calloc(1, 1);
    }
    if (len) {
        *len = d ? b->len : 0;
    }
    if (b->data) {
        slp_bufpool_forget(b->pool, b->data); /* the caller frees it */
    }
    size_t max = b->max;
    struct slp_bufpool *pool = b->pool;
    slp_dynbuf_init(b, max);
    b->pool = pool;
    return d;
}

void slp_dynbuf_reset(struct slp_dynbuf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void slp_dynbuf_free(struct slp_dynbuf *b)
{
    if (!b) {
        return;
    }
    slp_bufpool_put(b->pool, b->data);
    struct slp_bufpool *pool = b->pool;
    slp_dynbuf_init(b, b->max);
    b->pool = pool;
}
