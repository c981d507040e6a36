/* test_html.c - the HTML primitives (proto/html.h): escaping of hostile strings, numbers for
 * people and exact ones for data-value, base64 (RFC 4648's test vectors), the page frame.
 * Every expected string is written out by hand from the escaping rules of html.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "html.h"
#include "segloss.h"

/* Empties b for the next piece (free, then a fresh buffer of 1 MiB). */
#define RESET(b) (slp_dynbuf_free(&(b)), slp_dynbuf_init(&(b), 1 << 20))

/* Whether got is the string want; a failure prints both. */
static void check_eq(const char *got, const char *want, int line)
{
    if (got && strcmp(got, want) == 0) {
        check_passed_++;
    } else {
        check_failed_++;
        fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, line, got ? got : "(null)",
                want);
    }
}
#define CHECK_STR(got, want) check_eq((got), (want), __LINE__)

static void test_text_hostile(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK(slp_html_text(&b, "<script>alert(1)</script>") == 0);
    CHECK_STR(b.data, "&lt;script&gt;alert(1)&lt;/script&gt;");
    RESET(b);
    CHECK(slp_html_attr(&b, "\"><img src=x onerror=alert(1)>") == 0);
    CHECK_STR(b.data, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    RESET(b);
    slp_html_attr(&b, "' onmouseover='x'&amp;");
    CHECK_STR(b.data, "&#39; onmouseover=&#39;x&#39;&amp;amp;");
    RESET(b);
    /* tab and newline stay; other controls and DEL become U+FFFD (EF BF BD) */
    slp_html_text(&b, "a\tb\nc\x01"
                      "d\x7f");
    CHECK_STR(b.data, "a\tb\nc\xEF\xBF\xBD"
                      "d\xEF\xBF\xBD");
    RESET(b);
    /* a NUL inside counted bytes, and UTF-8 passed through untouched */
    slp_html_textn(&b, "x\0y\xC3\xA9", 5);
    CHECK_STR(b.data, "x\xEF\xBF\xBDy\xC3\xA9");
    RESET(b);
    slp_html_text(&b, NULL);
    CHECK_INT(b.len, 0);
    slp_dynbuf_free(&b);
}

static void test_numbers(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    slp_html_num(&b, 0.123456, 4);
    CHECK_STR(b.data, "0.1235");
    RESET(b);
    slp_html_num(&b, 1234567.0, 4);
    CHECK_STR(b.data, "1.235e+06");
    RESET(b);
    slp_html_num(&b, -0.0, 4);
    CHECK_STR(b.data, "0");
    RESET(b);
    slp_html_num(&b, 2.5, 0); /* at least one digit: 2.5 rounds to even, "2" */
    CHECK_STR(b.data, "2");
    RESET(b);
    slp_html_num(&b, NAN, 4);
    CHECK_STR(b.data, "\xE2\x80\x93"); /* en dash, never "nan" */
    RESET(b);
    slp_html_num(&b, INFINITY, 4);
    CHECK_STR(b.data, "\xE2\x80\x93");
    RESET(b);
    slp_html_exact(&b, 0.1);
    CHECK_STR(b.data, "0.1");
    RESET(b);
    slp_html_exact(&b, 1.0 / 3.0);
    CHECK_STR(b.data, "0.3333333333333333"); /* 16 digits read back to the double */
    RESET(b);
    slp_html_exact(&b, 2);
    CHECK_STR(b.data, "2");
    RESET(b);
    slp_html_exact(&b, -0.5);
    CHECK_STR(b.data, "-0.5");
    RESET(b);
    slp_html_exact(&b, 1e300);
    CHECK_STR(b.data, "1e+300");
    RESET(b);
    slp_html_exact(&b, NAN);
    CHECK_STR(b.data, "null");
    RESET(b);
    slp_html_exact(&b, -INFINITY);
    CHECK_STR(b.data, "null");
    slp_dynbuf_free(&b);
}

static void test_base64(void)
{
    /* RFC 4648 section 10 */
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        RESET(b);
        CHECK(slp_html_base64(&b, vec[i][0], strlen(vec[i][0])) == 0);
        CHECK_STR(b.len ? b.data : "", vec[i][1]);
    }
    RESET(b);
    /* bytes over 0x7f: FF FE FD -> 111111 111111 111011 111101 = "//79" */
    slp_html_base64(&b, "\xFF\xFE\xFD", 3);
    CHECK_STR(b.data, "//79");
    slp_dynbuf_free(&b);
    /* the cap of the buffer holds */
    slp_dynbuf_init(&b, 3);
    CHECK(slp_html_base64(&b, "foo", 3) == SL_ETOOLARGE);
    slp_dynbuf_free(&b);
}

static void test_frame(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    slp_html_begin(&b, "a <b> & \"c\"", "p{x:y}");
    slp_html_end(&b);
    CHECK(b.err == 0);
    CHECK_PREFIX(b.data, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    CHECK_HAS(b.data, "<title>a &lt;b&gt; &amp; &quot;c&quot;</title>");
    CHECK_HAS(b.data, "p{x:y}</style></head>\n<body>\n");
    CHECK_HAS(b.data, "<link rel=\"icon\" href=\"data:,\">"); /* no request for /favicon.ico */
    CHECK(strstr(b.data, "http://") == NULL && strstr(b.data, "https://") == NULL);
    const char *tail = "</body></html>\n";
    CHECK(b.len > strlen(tail) && strcmp(b.data + b.len - strlen(tail), tail) == 0);
    slp_dynbuf_free(&b);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_text_hostile),
    CHECK_TEST(test_numbers),
    CHECK_TEST(test_base64),
    CHECK_TEST(test_frame),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_html", tests);
}
