/* test_answer.c - proto's JSON answers on the capped buffer (proto/dynbuf.h): the writers'
 * text (escapes per RFC 8259 section 7, shortest round-trip numbers) and what an answer that
 * failed to fit becomes (413 over the cap, 503 out of memory). Expected texts are written by
 * hand. */
#include <stdlib.h>
#include <string.h>

#include "../../proto/internal.h" /* not lib/internal.h, which -Ilib finds first */
#include "../check.h"

static void test_writers(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, SLP_ANSWER_MAX);
    CHECK_INT(slp_json_add_str(&b, "a\"b\\c\nd\x01", 0), 0);
    CHECK(strcmp(b.data, "\"a\\\"b\\\\c\\u000ad\\u0001\"") == 0);
    slp_dynbuf_reset(&b);
    CHECK_INT(slp_json_add_str(&b, "", 0), 0);
    CHECK(strcmp(b.data, "\"\"") == 0);
    slp_dynbuf_reset(&b);
    slp__write_num(&b, 0.1);
    slp_dynbuf_add(&b, ",", 1);
    slp__write_num(&b, 1.0 / 3.0);
    slp_dynbuf_add(&b, ",", 1);
    slp__write_num(&b, NAN);
    slp_dynbuf_add(&b, ",", 1);
    slp__write_int(&b, -42);
    CHECK(strcmp(b.data, "0.1,0.3333333333333333,null,-42") == 0);
    slp_dynbuf_free(&b);
}

static void test_answers(void)
{
    struct slp_response out;
    struct slp_dynbuf b;

    slp_dynbuf_init(&b, 64);
    slp_dynbuf_adds(&b, "{\"ok\":true}");
    slp__answer_json(&b, &out);
    CHECK_INT(out.status, 200);
    CHECK(out.len == 11 && strcmp(out.body, "{\"ok\":true}") == 0);
    CHECK(b.data == NULL && b.len == 0);
    slp_response_free(&out);

    /* 10 bytes into a buffer capped at 8: the sticky error, then 413 */
    slp_dynbuf_init(&b, 8);
    CHECK_INT(slp_json_add_str(&b, "12345678", 0), SL_ETOOLARGE);
    CHECK_INT(slp__write_int(&b, 1), SL_ETOOLARGE);
    slp__answer_json(&b, &out);
    CHECK_INT(out.status, 413);
    CHECK_HAS(out.body, "the answer is over the limit of 8 bytes");
    CHECK(b.data == NULL);
    slp_response_free(&out);

    slp_dynbuf_init(&b, 64);
    slp_dynbuf_adds(&b, "{");
    b.err = SL_ENOMEM; /* as a failed realloc leaves it */
    slp__answer_json(&b, &out);
    CHECK_INT(out.status, 503);
    CHECK_HAS(out.body, "out of memory while writing the answer");
    slp_response_free(&out);
    slp_response_free(NULL);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_writers),
    CHECK_TEST(test_answers),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_answer", tests);
}
