/* test_dynbuf.c - the capped buffer (proto/dynbuf.h): growth, the cap, the sticky error,
 * take/reset/free. Every expected length below is counted by hand from the appended text. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "dynbuf.h"
#include "segloss.h"

static void test_grow(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK(b.len == 0 && b.data == NULL);
    int failed = 0;
    for (int i = 0; i < 1000; i++) {
        failed += slp_dynbuf_add(&b, "abc", 3) != 0;
    }
    CHECK(failed == 0);
    CHECK(b.len == 3000 && b.err == 0);
    CHECK(memcmp(b.data + 2997, "abc", 4) == 0); /* NUL-terminated */
    CHECK(slp_dynbuf_addf(&b, "%d-%s", 42, "x") == 0);
    CHECK(b.len == 3004 && strcmp(b.data + 3000, "42-x") == 0);
    /* a formatted piece longer than addf's stack buffer */
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(slp_dynbuf_addf(&b, "<%s>", big) == 0);
    CHECK(b.len == 3004 + 601 && b.data[3004] == '<' && b.data[3004 + 600] == '>');
    size_t n = 0;
    char *d = slp_dynbuf_take(&b, &n);
    CHECK(d != NULL && n == 3605 && strlen(d) == 3605);
    free(d);
    CHECK(b.len == 0 && b.data == NULL && b.max == (1u << 20));
    slp_dynbuf_free(&b);
}

static void test_cap(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 10);
    CHECK(slp_dynbuf_adds(&b, "0123456789") == 0); /* exactly the cap */
    CHECK(b.len == 10 && b.cap <= 11);
    CHECK(slp_dynbuf_add(&b, "x", 1) == SL_ETOOLARGE);
    /* sticky: nothing more is added, even what would fit after a reset */
    CHECK(slp_dynbuf_add(&b, "", 0) == SL_ETOOLARGE);
    CHECK(b.len == 10 && strcmp(b.data, "0123456789") == 0);
    CHECK(slp_dynbuf_room(&b, 0) == NULL);
    slp_dynbuf_reset(&b);
    CHECK(b.err == 0 && b.len == 0 && b.data[0] == '\0');
    CHECK(slp_dynbuf_addf(&b, "%s", "0123456789A") == SL_ETOOLARGE);
    CHECK(b.len == 0);
    slp_dynbuf_free(&b);
    slp_dynbuf_free(&b); /* twice is fine */
    slp_dynbuf_free(NULL);
    /* an empty buffer hands over "" */
    size_t n = 7;
    char *d = slp_dynbuf_take(&b, &n);
    CHECK(d != NULL && n == 0 && d[0] == '\0');
    free(d);
}

static void test_room(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 100);
    char *at = slp_dynbuf_room(&b, 50);
    CHECK(at != NULL);
    memcpy(at, "hello", 5);
    slp_dynbuf_commit(&b, 5);
    CHECK(b.len == 5 && strcmp(b.data, "hello") == 0);
    CHECK(slp_dynbuf_room(&b, 96) == NULL && b.err == SL_ETOOLARGE); /* 5 + 96 > 100 */
    slp_dynbuf_free(&b);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_grow),
    CHECK_TEST(test_cap),
    CHECK_TEST(test_room),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_dynbuf", tests);
}
