/* filter.h - which tests run: every test has a name ("unit/lovasz/radix_u64", "golden/dice_basic",
 * "e2e/routing", "clients/cli/csv", "readme") and a run selects them by a pattern taken from
 * SEGLOSS_TEST (make test T=PATTERN sets it) or a program's own argument. A pattern is one or more
 * alternatives separated by ','; an alternative with a glob character (* ? [) must fnmatch(3) the
 * whole name, any other must be a substring of it. No pattern, or an empty one, selects every
 * test. tests/run.sh (case patterns) and tests/tally.py (Python) apply the same rule. */
#ifndef SEGLOSS_TESTS_FILTER_H
#define SEGLOSS_TESTS_FILTER_H

#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The pattern of this run: SEGLOSS_TEST, or NULL (everything). Borrowed from the environment. */
static inline const char *filter_pattern(void)
{
    const char *p = getenv("SEGLOSS_TEST");
    return p && *p ? p : NULL;
}

/* Whether name is selected by pattern (NULL or "" selects everything). */
static inline bool filter_match(const char *pattern, const char *name)
{
    if (!pattern || !*pattern) {
        return true;
    }
    while (*pattern) {
        const char *end = strchr(pattern, ',');
        size_t n = end ? (size_t)(end - pattern) : strlen(pattern);
        char alt[256];
        if (n > 0 && n < sizeof alt) {
            memcpy(alt, pattern, n);
            alt[n] = '\0';
            if (strpbrk(alt, "*?[") ? fnmatch(alt, name, 0) == 0 : strstr(name, alt) != NULL) {
                return true;
            }
        }
        pattern += n + (end != NULL);
    }
    return false;
}

#endif /* SEGLOSS_TESTS_FILTER_H */
