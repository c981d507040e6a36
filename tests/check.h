/* check.h - the in-house unit-test kit: count checks, print failures, end with a summary.
 * Each test program includes it once, calls CHECK*() and returns check_summary(name). */
#ifndef SEGLOSS_CHECK_H
#define SEGLOSS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed_;
static int check_failed_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed_++;                                                                       \
        } else {                                                                                   \
            check_failed_++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* |got - want| <= atol + rtol*|want|, as the golden cases compare. */
#define CHECK_CLOSE(got, want, rtol, atol)                                                         \
    do {                                                                                           \
        double g_ = (double)(got), w_ = (double)(want);                                            \
        if (fabs(g_ - w_) <= (atol) + (rtol)*fabs(w_)) {                                           \
            check_passed_++;                                                                       \
        } else {                                                                                   \
            check_failed_++;                                                                       \
            fprintf(stderr, "%s:%d: %s = %.17g, want %.17g\n", __FILE__, __LINE__, #got, g_, w_);  \
        }                                                                                          \
    } while (0)

#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ == w_) {                                                                            \
            check_passed_++;                                                                       \
        } else {                                                                                   \
            check_failed_++;                                                                       \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_);    \
        }                                                                                          \
    } while (0)

/* A message (may be NULL) that starts with prefix / contains part. */
#define CHECK_PREFIX(msg, prefix) check_str_((msg), (prefix), 1, __FILE__, __LINE__)
#define CHECK_HAS(msg, part) check_str_((msg), (part), 0, __FILE__, __LINE__)

static inline void check_str_(const char *msg, const char *want, int prefix, const char *file,
                              int line)
{
    int ok = msg && (prefix ? strncmp(msg, want, strlen(want)) == 0 : strstr(msg, want) != NULL);
    if (ok) {
        check_passed_++;
    } else {
        check_failed_++;
        fprintf(stderr, "%s:%d: message \"%s\" does not %s \"%s\"\n", file, line,
                msg ? msg : "(none)", prefix ? "start with" : "contain", want);
    }
}

/* Prints "name: N passed, M failed" and returns the exit status. */
static inline int check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

#endif /* SEGLOSS_CHECK_H */
