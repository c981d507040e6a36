/* dynbuf.h - segloss's one growable byte buffer, capped (after curl's lib/curlx/dynbuf.h).
 *
 * Every buffer that grows while reading or writing — request bodies, inflated data, JSON
 * answers, multipart parts, the CLI's responses — is a struct slp_dynbuf with a maximum size
 * fixed at init. Appending past the cap or failing to allocate puts the buffer in an error state:
 * later appends do nothing and return the same error, so a writer may append many pieces and
 * check once at the end.
 *
 * Errors: functions return 0, SL_ENOMEM (out of memory) or SL_ETOOLARGE (over the cap), the
 * codes of lib/segloss.h. The data is always NUL-terminated (not counted in len), so text can be
 * read in place. Ownership: the buffer owns its data until slp_dynbuf_take hands it over;
 * slp_dynbuf_free releases it and accepts a zeroed or already freed buffer. */
#ifndef SEGLOSS_DYNBUF_H
#define SEGLOSS_DYNBUF_H

#include <stdbool.h>
#include <stddef.h>

struct slp_bufpool;

struct slp_dynbuf {
    char *data;
    size_t len;               /* bytes held, not counting the terminating NUL */
    size_t cap;               /* bytes allocated */
    size_t max;               /* the most len may reach */
    int err;                  /* 0, or the error that stopped the buffer */
    struct slp_bufpool *pool; /* where its memory comes from and goes back (bufpool.h), set
                                 after init; NULL: malloc. Borrowed: must outlive the data */
};

/* Starts an empty buffer that may hold up to max bytes; allocates nothing. */
void slp_dynbuf_init(struct slp_dynbuf *b, size_t max);
/* Appends n bytes at p. Returns 0, or the buffer's error (SL_ENOMEM, SL_ETOOLARGE). */
int slp_dynbuf_add(struct slp_dynbuf *b, const void *p, size_t n);
/* Appends the NUL-terminated string s. */
int slp_dynbuf_adds(struct slp_dynbuf *b, const char *s);
/* Appends printf-formatted text. */
int slp_dynbuf_addf(struct slp_dynbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes without adding them: returns a pointer to write them at (then
 * call slp_dynbuf_commit with how many were written), or NULL on error (see b->err). */
char *slp_dynbuf_room(struct slp_dynbuf *b, size_t n);
/* Counts n bytes written at the pointer slp_dynbuf_room returned (n at most what it was asked). */
void slp_dynbuf_commit(struct slp_dynbuf *b, size_t n);
/* Hands the data over (the caller frees it; never NULL unless out of memory, "" when empty) and
 * *len its length when len is not NULL; the buffer is left empty, owning nothing, with the
 * same max and pool. */
char *slp_dynbuf_take(struct slp_dynbuf *b, size_t *len);
/* Empties the buffer and clears its error, keeping the allocation and the max. */
void slp_dynbuf_reset(struct slp_dynbuf *b);
/* Frees the data (back to its pool, if any); b may be NULL. The buffer is left empty and usable
 * (same max, same pool). */
void slp_dynbuf_free(struct slp_dynbuf *b);

#endif
