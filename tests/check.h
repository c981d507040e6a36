/* check.h - the in-house unit-test kit: count checks, print failures, end with a summary.
 * Each test program includes it once, writes its tests as void functions calling CHECK*(), lists
 * them in a table of CHECK_TEST() rows and ends main() with CHECK_RUN(name, table): every test has
 * a name and can run alone (tests/filter.h says how a pattern selects them). */
#ifndef SEGLOSS_CHECK_H
#define SEGLOSS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

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

/* One named test: a row of the table main() hands to check_run(). */
struct check_test {
    const char *name; /* the function's name; "test_" is dropped from the full name */
    void (*fn)(void);
};
/* clang-format off */
#define CHECK_TEST(fn) {#fn, fn}
/* clang-format on */

/* Runs the tests of list[0..n) whose full names "unit/MODULE/NAME" (MODULE: program without
 * "test_") match the pattern (argv[1] if given, else SEGLOSS_TEST; none selects all), in order,
 * then prints the summary line and returns the exit status. "--list" prints the full names. */
static inline int check_run(const char *program, const struct check_test *list, size_t n, int argc,
                            char **argv)
{
    const char *pattern = filter_pattern();
    bool list_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            list_only = true;
        } else {
            pattern = argv[i];
        }
    }
    const char *module = strncmp(program, "test_", 5) == 0 ? program + 5 : program;
    for (size_t i = 0; i < n; i++) {
        const char *name = list[i].name;
        char full[256];
        snprintf(full, sizeof full, "unit/%s/%s", module,
                 strncmp(name, "test_", 5) == 0 ? name + 5 : name);
        if (list_only) {
            printf("%s\n", full);
        } else if (filter_match(pattern, full)) {
            list[i].fn();
        }
    }
    return list_only ? 0 : check_summary(program);
}
#define CHECK_RUN(program, list)                                                                   \
    check_run((program), (list), sizeof(list) / sizeof((list)[0]), argc, argv)

#endif /* SEGLOSS_CHECK_H */
