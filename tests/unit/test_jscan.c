/* test_jscan.c - proto/jscan.c: the JSON skeleton. Long string values of "data"/"counts" keys
 * are left out of jansson's parse and read back from the text; everything a user can see must
 * be what jansson alone gives on the same text. jansson (libjansson, a peer implementation) is
 * the reference: trees, decoded strings and error messages are compared with its parse of the
 * original text; the other expected values are written by hand (UTF-8 bytes of code points,
 * base64 offsets counted in the test's own strings). */
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../jdoc_same.h"
#include "array_internal.h"
#include "proto.h"

#define MSGLEN 512

static char *strf(const char *fmt, ...) SLP__PRINTF(1, 2);
static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* n characters of base64 text (the alphabet in turn), a new string. */
static char *b64text(size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        s[i] = al[(i * 7) % 64];
    }
    s[n] = '\0';
    return s;
}

/* What jansson alone says about text: 0 and *root, or its message as slp__json_parse words
 * it. */
static int jansson_alone(const char *text, size_t len, json_t **root, char *msg)
{
    json_error_t e;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (*root) {
        msg[0] = '\0';
        return 0;
    }
    snprintf(msg, MSGLEN, "malformed JSON at line %d, column %d: %s", e.line, e.column, e.text);
    return SL_EMALFORMED;
}

/* Loads text[0..len) through the skeleton and checks it against jansson alone: the same result
 * and message, the same tree. Returns the number of strings left out (-1 on a mismatch). */
static long check_against_jansson(const char *text, size_t len, int line)
{
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.max_depth = 0;
    lim.max_json_values = 0;
    /* a heap copy of exactly len bytes: ASan sees any read past the end */
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    char m1[MSGLEN] = "", m2[MSGLEN] = "";
    struct slp__jdoc doc;
    json_t *r1 = NULL, *r2 = NULL;
    int rc1 = slp__json_load(copy, len, &lim, NULL, &doc, &r1, m1, MSGLEN);
    long left_out = rc1 ? 0 : (long)doc.n;
    int rc2 = jansson_alone(copy, len, &r2, m2);
    int ok = rc1 == rc2 && strcmp(m1, m2) == 0 && (rc1 || jdoc_same_tree(&doc, r1, r2, 0));
    if (!ok) {
        fprintf(stderr, "line %d: skeleton rc %d '%s', jansson rc %d '%s' on: %.*s\n", line, rc1,
                m1, rc2, m2, (int)(len < 300 ? len : 300), text);
    }
    CHECK(ok);
    json_decref(r1);
    json_decref(r2);
    if (!rc1) {
        slp__jdoc_free(&doc);
    }
    free(copy);
    return ok ? left_out : -1;
}
#define AGAINST_JANSSON(text) check_against_jansson((text), strlen(text), __LINE__)

/* ---- which strings are left out ---- */

static void test_which(void)
{
    char *d = b64text(100), *k = b64text(SLP__JSON_LONG - 1), *e = b64text(SLP__JSON_LONG);
    char *t;
    /* a data string of 100 characters: left out; its bytes are the text's own */
    t = strf("{\"prediction\": {\"format\": \"raw\", \"data\": \"%s\"}}", d);
    {
        struct slp_limits lim;
        slp_limits_default(&lim);
        struct slp__jdoc doc;
        json_t *root = NULL;
        char m[MSGLEN];
        CHECK_INT(slp__json_load(t, strlen(t), &lim, NULL, &doc, &root, m, MSGLEN), 0);
        CHECK_INT(doc.n, 1);
        const json_t *v = json_object_get(json_object_get(root, "prediction"), "data");
        CHECK(json_is_string(v));
        /* what jansson holds is the placeholder: U+0000 "slp:0" */
        CHECK_INT(json_string_length(v), 6);
        CHECK(memcmp(json_string_value(v), "\0slp:0", 6) == 0);
        const char *s = NULL;
        size_t n = 0;
        CHECK_INT(slp__jdoc_string(&doc, v, &s, &n), 0);
        CHECK(s == strstr(t, d)); /* no copy: the bytes of the body */
        CHECK_INT(n, 100);
        /* a doc that does not know it: the placeholder as it is */
        CHECK_INT(slp__jdoc_string(NULL, v, &s, &n), 0);
        CHECK_INT(n, 6);
        json_decref(root);
        slp__jdoc_free(&doc);
        slp__jdoc_free(&doc); /* a freed doc is zeroed: again is fine */
    }
    CHECK_INT(AGAINST_JANSSON(t), 1);
    free(t);
    /* the threshold: SLP__JSON_LONG - 1 characters stay, SLP__JSON_LONG go */
    t = strf("{\"a\": {\"data\": \"%s\"}, \"b\": {\"data\": \"%s\"}}", k, e);
    CHECK_INT(AGAINST_JANSSON(t), 1);
    free(t);
    /* values of other keys, keys, top-level strings, strings in lists of other keys stay */
    t = strf("{\"prediction\": {\"format\": \"%s\", \"part\": \"%s\", \"x\": [\"%s\"]}, "
             "\"%s\": 1, \"name\": \"%s\"}",
             d, d, d, d, d);
    CHECK_INT(AGAINST_JANSSON(t), 0);
    free(t);
    t = strf("[\"%s\", {\"data\": 1}]", d);
    CHECK_INT(AGAINST_JANSSON(t), 0);
    free(t);
    /* a list under data (rle per image), nested lists, COCO counts strings in a list of
     * objects: all go; an object under data holds its own keys, whose values stay */
    t = strf("{\"t\": {\"data\": [\"%s\", \"%s\", [\"%s\"], 1]}, \"c\": {\"data\": [{\"size\": [1, "
             "2], \"counts\": \"%s\"}]}, \"o\": {\"data\": {\"x\": \"%s\"}}}",
             d, e, d, d, d);
    CHECK_INT(AGAINST_JANSSON(t), 4);
    free(t);
    /* "data" as a value is not a key; a key after a nested value is read again */
    t = strf("{\"k\": \"data\", \"v\": \"%s\", \"data\": {\"a\": [1, {\"b\": 2}]}, \"z\": \"%s\", "
             "\"counts\": \"%s\"}",
             d, d, d);
    CHECK_INT(AGAINST_JANSSON(t), 1);
    free(t);
    /* "data" spelled with an escape is still the key data to jansson, but not to the scan:
     * its value goes through jansson, which is only slower */
    t = strf("{\"d\\u0061ta\": \"%s\"}", d);
    CHECK_INT(AGAINST_JANSSON(t), 0);
    free(t);
    /* deeper than the scan's 64 remembered levels: never left out, always right */
    {
        size_t depth = 70;
        char *body = malloc(depth * 10 + 200);
        size_t at = 0;
        for (size_t i = 0; i < depth; i++) {
            at += (size_t)sprintf(body + at, "{\"data\": ");
        }
        at += (size_t)sprintf(body + at, "[\"%s\"]", d);
        for (size_t i = 0; i < depth; i++) {
            body[at++] = '}';
        }
        body[at] = '\0';
        CHECK_INT(AGAINST_JANSSON(body), 0);
        free(body);
    }
    free(d);
    free(k);
    free(e);
}

/* ---- escapes, UTF-8, control characters ---- */

static void test_unescape(void)
{
    struct {
        const char *in;
        const char *out;
        size_t outlen;
    } ok[] = {
        {"abc", "abc", 3},
        {"a\\/b", "a/b", 3},
        {"\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t", 8},
        {"\\u0041", "A", 1},
        {"\\u00e9", "\xc3\xa9", 2},     /* U+00E9: 110 00011, 10 101001 */
        {"\\u20AC", "\xe2\x82\xac", 3}, /* U+20AC: 1110 0010, 10 000010, 10 101100 */
        {"\\u07ff\\u0800", "\xdf\xbf\xe0\xa0\x80", 5},
        {"\\uffff", "\xef\xbf\xbf", 3},
        {"\\u0001", "\x01", 1},
        {"x\\ud7ff", "x\xed\x9f\xbf", 4},
        {"\\ue000", "\xee\x80\x80", 3},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *out = NULL;
        size_t n = 0;
        CHECK_INT(slp__json_unescape(ok[i].in, strlen(ok[i].in), &out, &n), 0);
        CHECK_INT(n, ok[i].outlen);
        CHECK(out && memcmp(out, ok[i].out, n) == 0);
        free(out);
    }
    /* outside what the scan lets through */
    static const char *const bad[] = {"\\u0000", "\\ud800", "\\udfff", "\\x", "\\", "\\u12"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)"sentinel";
        size_t n = 9;
        CHECK_INT(slp__json_unescape(bad[i], strlen(bad[i]), &out, &n), SL_EINTERNAL);
        CHECK(out == NULL && n == 0);
    }
}

static void test_escapes_and_bytes(void)
{
    char *d = b64text(120);
    /* every escape jansson knows, in a long data string: left out, and decoded as jansson does */
    static const char *const escaped[] = {
        "\\/",     "\\\"",      "\\\\",           "\\b",     "\\f",     "\\n",
        "\\r",     "\\t",       "\\u0041",        "\\u00e9", "\\u20ac", "\\uFFFF",
        "\\u0001", "\\/\\/\\/", "\\u005c\\u0022", /* \ and " spelled as \u: not the end of the
                                                     string */
    };
    for (size_t i = 0; i < sizeof escaped / sizeof escaped[0]; i++) {
        char *t = strf("{\"p\": {\"data\": \"%.40s%s%s\"}}", d, escaped[i], d);
        CHECK_INT(AGAINST_JANSSON(t), 1);
        free(t);
    }
    /* what jansson must judge stays in the skeleton: a surrogate pair, a lone surrogate, a bad
     * escape, \u0000 (refused: no placeholder can be forged), UTF-8, invalid UTF-8, a control
     * character, DEL (valid) */
    static const char *const kept[] = {
        "\\ud83d\\ude00", "\\ud83d", "\\ude00x",     "\\x",  "\\u12g4", "\\u0000", "\xc3\xa9",
        "\xff",           "\xc3",    "\xed\xa0\x80", "\x01", "\n",      "\t",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char *t = strf("{\"p\": {\"data\": \"%s%s\"}, \"q\": {\"data\": \"%s\"}}", d, kept[i], d);
        long n = AGAINST_JANSSON(t);
        /* the string with it stays; the other one goes unless the text cannot be parsed */
        CHECK(n == 0 || n == 1);
        free(t);
    }
    {
        char *t = strf("{\"p\": {\"data\": \"%s\x7f\"}}", d);
        CHECK_INT(AGAINST_JANSSON(t), 1);
        free(t);
    }
    /* a \u0000 anywhere - a short value, a key - and the text is parsed as it is (refused) */
    static const char *const nul_bodies[][2] = {
        {"{\"a\": \"x\\u0000\", \"b\": {\"data\": \"", "\"}}"},
        {"{\"a\\u0000\": 1, \"b\": {\"data\": \"", "\"}}"},
        {"{\"b\": {\"data\": \"", "\"}, \"c\": [\"\\u0000\"]}"},
    };
    for (size_t i = 0; i < sizeof nul_bodies / sizeof nul_bodies[0]; i++) {
        char *t = strf("%s%s%s", nul_bodies[i][0], d, nul_bodies[i][1]);
        CHECK_INT(AGAINST_JANSSON(t), 0);
        free(t);
    }
    free(d);
}

/* ---- user strings that look like placeholders ---- */

static void test_lookalikes(void)
{
    char m[MSGLEN];
    struct slp_response r;
    char *d = b64text(100);
    /* the placeholder itself, spelled by a user: refused as jansson refuses any \u0000 */
    static const char *const forged[][2] = {
        {"{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [3], \"data\": "
         "\"\\u0000slp:0\"}, \"target\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": "
         "[3], \"data\": \"",
         "\"}}"},
        {"{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [3], \"data\": "
         "\"\\u0000slp:0",
         "\"}}"},
    };
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        char *t = strf("%s%s%s", forged[i][0], d, forged[i][1]);
        slp_score_request(t, strlen(t), NULL, NULL, &r);
        CHECK_INT(r.status, 400);
        CHECK(r.body && strstr(r.body, "\\\\u0000 is not allowed without JSON_ALLOW_NUL"));
        slp_response_free(&r);
        CHECK_INT(AGAINST_JANSSON(t), 0);
        free(t);
    }
    /* the same characters with the backslash escaped are a plain string of the user's: a
     * backslash, "u0000slp:0", ..., which base64 refuses at offset 0, short or long */
    for (size_t i = 0; i < 2; i++) {
        /* 11 + 2 or 11 + 98 characters: a length base64 cannot have, so it looks at each */
        char *v = strf("\\\\u0000slp:0%.98s", i ? d : "AA");
        char *t = strf("{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": "
                       "[3], \"data\": \"%s\"}, \"target\": [1, 0, 1]}",
                       v);
        slp_score_request(t, strlen(t), NULL, NULL, &r);
        CHECK_INT(r.status, 400);
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        CHECK_PREFIX(json_string_value(json_object_get(j, "detail")),
                     "prediction.data: invalid base64 at offset 0");
        json_decref(j);
        slp_response_free(&r);
        CHECK_INT(AGAINST_JANSSON(t), i == 1 ? 1 : 0);
        free(t);
        free(v);
    }
    /* a placeholder for a string that does not exist (no doc, or an index past the table) is
     * an ordinary string */
    {
        struct slp__jdoc doc;
        memset(&doc, 0, sizeof doc);
        json_t *s = json_stringn("\0slp:7", 6);
        const char *p = NULL;
        size_t n = 0;
        CHECK_INT(slp__jdoc_string(&doc, s, &p, &n), 0);
        CHECK(n == 6 && p == json_string_value(s));
        json_decref(s);
    }
    (void)m;
    free(d);
}

/* ---- messages ---- */

/* "detail" of the problem answer to body on /v1/score, in buf. */
static int score_detail(const char *body, size_t len, char *buf)
{
    struct slp_response r;
    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    slp_score_request(copy, len, NULL, NULL, &r);
    free(copy);
    int status = r.status;
    buf[0] = '\0';
    if (status != 200) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        snprintf(buf, MSGLEN, "%s", json_string_value(json_object_get(j, "detail")));
        json_decref(j);
    }
    slp_response_free(&r);
    return status;
}

static void test_messages(void)
{
    char det[MSGLEN];
    /* raw uint8 [90]: 120 base64 characters; the one at offset 77 is bad */
    char *d = b64text(120);
    d[77] = '!';
    char *t = strf("{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [90], "
                   "\"data\": \"%s\"}, \"target\": {\"format\": \"raw\", \"dtype\": \"uint8\", "
                   "\"shape\": [90], \"data\": \"%s\"}}",
                   d, d);
    CHECK_INT(AGAINST_JANSSON(t), 2);
    CHECK_INT(score_detail(t, strlen(t), det), 400);
    CHECK_PREFIX(det, "prediction.data: invalid base64 at offset 77");
    free(t);
    /* the offset is in the decoded string, as jansson would have decoded it: \/ is one
     * character, so a bad one after two of them is at 77 - 2 = 75 of what follows */
    d[77] = 'A';
    char *esc = strf("\\/\\/%.75s!%s", d, d + 78);
    t = strf("{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [90], "
             "\"data\": \"%s\"}, \"target\": [1]}",
             esc);
    CHECK_INT(score_detail(t, strlen(t), det), 400);
    CHECK_PREFIX(det, "prediction.data: invalid base64 at offset 77");
    free(t);
    free(esc);
    /* an escaped newline at offset 50 of a long string */
    esc = strf("%.50s\\n%s", d, d + 51);
    t = strf("{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [90], "
             "\"data\": \"%s\"}, \"target\": [1]}",
             esc);
    CHECK_INT(score_detail(t, strlen(t), det), 400);
    CHECK_PREFIX(det, "prediction.data: invalid base64 at offset 50");
    free(t);
    free(esc);
    /* base64 with \/ for every '/' (as PHP writes it) decodes as without */
    {
        struct slp_limits lim;
        slp_limits_default(&lim);
        char *plain = b64text(128); /* 96 bytes; every 64th character is '/' */
        size_t extra = 0;
        for (const char *p = plain; *p; p++) {
            extra += *p == '/';
        }
        CHECK(extra > 0);
        char *slashed = malloc(strlen(plain) + extra + 1), *o = slashed;
        for (const char *p = plain; *p; p++) {
            if (*p == '/') {
                *o++ = '\\';
            }
            *o++ = *p;
        }
        *o = '\0';
        char *t1 = strf("{\"a\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [96], "
                        "\"data\": \"%s\"}, \"b\": {\"format\": \"raw\", \"dtype\": \"uint8\", "
                        "\"shape\": [96], \"data\": \"%s\"}}",
                        plain, slashed);
        CHECK_INT(AGAINST_JANSSON(t1), 2);
        struct slp__jdoc doc;
        json_t *root = NULL;
        struct slp_array a, b;
        CHECK_INT(slp__json_load(t1, strlen(t1), &lim, NULL, &doc, &root, det, MSGLEN), 0);
        CHECK(doc.n == 2 && !doc.strs[0].escaped && doc.strs[1].escaped);
        CHECK_INT(slp__array_from_json_doc(json_object_get(root, "a"), "a", &lim, NULL, &doc, &a,
                                           det, MSGLEN),
                  0);
        CHECK_INT(slp__array_from_json_doc(json_object_get(root, "b"), "b", &lim, NULL, &doc, &b,
                                           det, MSGLEN),
                  0);
        CHECK(a.t.data && b.t.data && memcmp(a.t.data, b.t.data, 96) == 0);
        slp_array_free(&a);
        slp_array_free(&b);
        json_decref(root);
        slp__jdoc_free(&doc);
        free(t1);
        free(slashed);
        free(plain);
    }
    /* a long key: not left out; the messages quote it as before (truncated at 64) */
    {
        char *key = b64text(100);
        t = strf("{\"prediction\": {\"format\": \"list\", \"data\": [1], \"%s\": 1}, \"target\": "
                 "[1]}",
                 key);
        CHECK_INT(score_detail(t, strlen(t), det), 422);
        char *want = strf("prediction.%.64s: unknown key", key);
        CHECK_PREFIX(det, want);
        free(want);
        free(t);
        /* a long non-data value: quoted whole */
        t = strf("{\"prediction\": [1], \"target\": [1], \"mode\": \"%s\"}", key);
        CHECK_INT(score_detail(t, strlen(t), det), 422);
        CHECK_PREFIX(det, "mode: must be one of binary, multiclass, multilabel");
        free(t);
        t = strf("{\"prediction\": [1], \"target\": [1], \"losses\": [{\"name\": \"%s\"}]}", key);
        CHECK_INT(score_detail(t, strlen(t), det), 422);
        want = strf("losses[0].name: unknown loss \"%s\"", key);
        CHECK_PREFIX(det, want);
        free(want);
        free(t);
        /* duplicate long keys, and duplicate data keys with long values: jansson's 400 */
        t = strf("{\"%s\": 1, \"%s\": 2}", key, key);
        CHECK_INT(AGAINST_JANSSON(t), 0);
        CHECK_INT(score_detail(t, strlen(t), det), 400);
        CHECK_HAS(det, "duplicate object key");
        free(t);
        t = strf("{\"p\": {\"data\": \"%s\", \"data\": \"%s\"}}", key, key);
        CHECK_INT(AGAINST_JANSSON(t), 0);
        CHECK_INT(score_detail(t, strlen(t), det), 400);
        CHECK_HAS(det, "duplicate object key");
        free(t);
        free(key);
    }
    /* invalid UTF-8 and a control character inside a long data string: jansson's 400 */
    {
        char *bad =
            strf("{\"prediction\": {\"format\": \"raw\", \"data\": \"%.60s\xff%s\"}}", d, d);
        CHECK_INT(AGAINST_JANSSON(bad), 0);
        CHECK_INT(score_detail(bad, strlen(bad), det), 400);
        CHECK_PREFIX(det, "malformed JSON at line 1, column");
        CHECK_HAS(det, "unable to decode byte 0xff");
        free(bad);
        bad = strf("{\"prediction\": {\"format\": \"raw\", \"data\": \"%.60s\x01%s\"}}", d, d);
        CHECK_INT(score_detail(bad, strlen(bad), det), 400);
        CHECK_HAS(det, "control character 0x1");
        free(bad);
    }
    /* valid UTF-8 (é, 2 bytes) at character 60 of a long data string: jansson decodes the
     * string; base64 names the byte offset of its first byte */
    {
        char *u = strf("{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": "
                       "[93], \"data\": \"%.60s\xc3\xa9%.62s\"}, \"target\": [1, 0, 1]}",
                       d, d);
        CHECK_INT(score_detail(u, strlen(u), det), 400);
        CHECK_PREFIX(det, "prediction.data: invalid base64 at offset 60");
        free(u);
    }
    free(d);
}

/* Every prefix of a body with long strings - cut inside a string, an escape, a key, a number -
 * gets exactly jansson's message on the same prefix, and none is read past its end. */
static void test_truncated(void)
{
    char *d = b64text(80);
    char *t = strf("{\"prediction\": {\"format\": \"npy\", \"compression\": \"gzip\", \"data\": "
                   "\"%.40s\\/\\u0041%s\"}, \"target\": {\"format\": \"rle\", \"shape\": [2, 2], "
                   "\"data\": [\"%s\", \"1 2\"]}, \"losses\": [{\"name\": \"dice\"}]}\n",
                   d, d, d);
    size_t len = strlen(t);
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        bad += check_against_jansson(t, cut, __LINE__) < 0;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(check_against_jansson(t, len, __LINE__), 2);
    free(t);
    free(d);
}

/* ---- random texts against jansson ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Appends a random string literal's contents: mostly base64 characters, sometimes an escape
 * (valid or not), a UTF-8 sequence (valid or not), a control character or a quote. */
static void random_string(uint64_t *rs, char *buf, size_t *at, size_t len)
{
    static const char *const pieces[] = {
        "\\/",
        "\\n",
        "\\\"",
        "\\\\",
        "\\u0041",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\ud800",
        "\\u0000",
        "\\x",
        "\\u12",
        "\xc3\xa9",
        "\xff",
        "\x01",
        "\"",
        "\\",
        "\xe2\x82\xac",
        "\\uDBFF\\uDFFF",
        "\x7f",
        "\\t",
    };
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= ";
    for (size_t i = 0; i < len; i++) {
        uint64_t r = rng_next(rs);
        if (r % 509 == 0) {
            const char *p = pieces[(r >> 8) % (sizeof pieces / sizeof pieces[0])];
            size_t n = strlen(p);
            memcpy(buf + *at, p, n);
            *at += n;
        } else {
            buf[(*at)++] = al[(r >> 16) % (sizeof al - 1)];
        }
    }
}

static void random_value(uint64_t *rs, char *buf, size_t *at, int depth);

static void random_member_key(uint64_t *rs, char *buf, size_t *at)
{
    static const char *const keys[] = {"data", "counts", "data", "format", "d", "datax", "x"};
    uint64_t r = rng_next(rs);
    buf[(*at)++] = '"';
    if (r % 11 == 0) {
        random_string(rs, buf, at, 1 + (r >> 8) % 100);
    } else {
        const char *k = keys[(r >> 8) % (sizeof keys / sizeof keys[0])];
        memcpy(buf + *at, k, strlen(k));
        *at += strlen(k);
    }
    buf[(*at)++] = '"';
}

static void random_value(uint64_t *rs, char *buf, size_t *at, int depth)
{
    uint64_t r = rng_next(rs);
    int kind = depth > 3 ? (int)(r % 3) : (int)(r % 6);
    if (kind == 0) {
        buf[(*at)++] = '"';
        random_string(rs, buf, at, (r >> 8) % 2 ? 1 + (r >> 9) % 20 : 40 + (r >> 9) % 200);
        buf[(*at)++] = '"';
    } else if (kind == 1) {
        *at += (size_t)sprintf(buf + *at, "%d", (int)((r >> 8) % 1000));
    } else if (kind == 2) {
        static const char *const lit[] = {"true", "null", "-1.5e3", "[]", "{}"};
        const char *l = lit[(r >> 8) % 5];
        memcpy(buf + *at, l, strlen(l));
        *at += strlen(l);
    } else if (kind == 3) {
        int n = (int)((r >> 8) % 4);
        buf[(*at)++] = '[';
        for (int i = 0; i < n; i++) {
            if (i) {
                buf[(*at)++] = ',';
            }
            random_value(rs, buf, at, depth + 1);
        }
        buf[(*at)++] = ']';
    } else {
        int n = (int)((r >> 8) % 4);
        buf[(*at)++] = '{';
        for (int i = 0; i < n; i++) {
            if (i) {
                buf[(*at)++] = ',';
            }
            random_member_key(rs, buf, at);
            buf[(*at)++] = ':';
            random_value(rs, buf, at, depth + 1);
        }
        buf[(*at)++] = '}';
    }
}

static void test_random(void)
{
    uint64_t rs = 0x5eed5eed12345ull;
    char *buf = malloc(1 << 20);
    int mismatches = 0;
    long left_out = 0, parsed = 0;
    for (int it = 0; it < 8000; it++) {
        size_t at = 0;
        buf[at++] = '{';
        random_member_key(&rs, buf, &at);
        buf[at++] = ':';
        random_value(&rs, buf, &at, 0);
        buf[at++] = '}';
        uint64_t r = rng_next(&rs);
        if (r % 5 == 0) {
            at = (size_t)(r >> 8) % (at + 1); /* truncated */
        } else if (r % 5 == 1 && at > 0) {
            buf[(r >> 8) % at] = (char)(r >> 32); /* one byte changed */
        }
        long n = check_against_jansson(buf, at, __LINE__);
        mismatches += n < 0;
        left_out += n > 0 ? n : 0;
        parsed += n > 0;
    }
    CHECK_INT(mismatches, 0);
    /* the generator does reach the interesting case */
    if (!(left_out > 100 && parsed > 50)) {
        fprintf(stderr, "random: %ld left out in %ld parsed texts\n", left_out, parsed);
    }
    CHECK(left_out > 100 && parsed > 50);
    free(buf);
}

/* ---- the other entry points: multipart spec, weight map, rle and COCO strings ---- */

static void test_routes(void)
{
    /* a 4 x 40 mask as rle (column-major runs of 2 from 1, 9, .., 153), a long string with an
     * escape (\u0020 is a space, a separator) so that it is left out and unescaped */
    char rle[200];
    size_t at = 0;
    for (int k = 0; k < 20; k++) {
        at += (size_t)sprintf(rle + at, "%d 2%s", 1 + 8 * k, k == 4 ? "\\u0020" : " ");
    }
    rle[at] = '\0';
    CHECK(at >= SLP__JSON_LONG);
    char *t =
        strf("{\"target\": {\"format\": \"rle\", \"shape\": [4, 40], \"data\": \"%s\"}}", rle);
    CHECK_INT(AGAINST_JANSSON(t), 1);
    struct slp_response r;
    slp_weight_map_request(t, strlen(t), NULL, NULL, true, &r);
    CHECK_INT(r.status, 200);
    slp_response_free(&r);
    free(t);
    /* the same mask as prediction labels and target, in a multipart spec part */
    t = strf("{\"prediction\": {\"format\": \"rle\", \"shape\": [4, 40], \"data\": [\"%s\"]}, "
             "\"target\": {\"format\": \"rle\", \"shape\": [4, 40], \"data\": \"%s\"}, "
             "\"prediction_type\": \"labels\", \"metrics\": [\"confusion\"]}",
             rle, rle);
    const struct slp_part spec = {"spec", (const unsigned char *)t, strlen(t)};
    const struct slp_parts parts = {&spec, 1};
    slp_score_multipart(&parts, NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        json_t *c =
            json_object_get(json_object_get(json_object_get(j, "metrics"), "confusion"), "global");
        /* 20 runs of 2 pixels of 160: TP 40, FP 0, FN 0, TN 120 */
        CHECK_INT(json_integer_value(json_object_get(c, "tp")), 40);
        CHECK_INT(json_integer_value(json_object_get(c, "tn")), 120);
        json_decref(j);
    }
    slp_response_free(&r);
    free(t);
    /* a COCO counts string: 4 x 20, runs of 2 zeros and 2 ones alternating: "22..." in the
     * compressed form is 2 then deltas 0 from the fourth on: "2" = '0' + 2 -> '2'; two counts
     * of 2 then 38 deltas of 0 ('0'). 40 counts of 2 cover 80 pixels. */
    char counts[64];
    memset(counts, '0', 40);
    counts[0] = counts[1] = counts[2] = '2';
    counts[40] = '\0';
    char padded[200];
    /* make it long: the same counts with escapes, \u0030 = '0' */
    at = (size_t)sprintf(padded, "222");
    for (int k = 3; k < 40; k++) {
        at += (size_t)sprintf(padded + at, "%s", k % 2 ? "\\u0030" : "0");
    }
    CHECK(at >= SLP__JSON_LONG);
    char *t1 = strf("{\"prediction\": {\"format\": \"coco_rle\", \"data\": {\"size\": [4, 20], "
                    "\"counts\": \"%s\"}}, \"target\": {\"format\": \"coco_rle\", \"data\": "
                    "[{\"size\": [4, 20], \"counts\": \"%s\"}]}, \"prediction_type\": \"labels\", "
                    "\"metrics\": [\"confusion\"]}",
                    padded, counts);
    CHECK_INT(AGAINST_JANSSON(t1), 1);
    slp_score_request(t1, strlen(t1), NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        json_t *c =
            json_object_get(json_object_get(json_object_get(j, "metrics"), "confusion"), "global");
        CHECK_INT(json_integer_value(json_object_get(c, "fp")), 0);
        CHECK_INT(json_integer_value(json_object_get(c, "fn")), 0);
        CHECK_INT(json_integer_value(json_object_get(c, "tp")), 40);
        json_decref(j);
    }
    slp_response_free(&r);
    free(t1);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_which),      CHECK_TEST(test_unescape), CHECK_TEST(test_escapes_and_bytes),
    CHECK_TEST(test_lookalikes), CHECK_TEST(test_messages), CHECK_TEST(test_truncated),
    CHECK_TEST(test_random),     CHECK_TEST(test_routes),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_jscan", tests);
}
