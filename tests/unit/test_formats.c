/* test_formats.c - the wire-format table of proto/array.c against the contract: openapi.json's
 * ArrayObject (read-only) lists the same formats in the same order, "part" is allowed for the
 * same ones and compression refused for the same ones; the messages that list formats say the
 * names openapi.json gives, in its order. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../check.h"
#include "array_internal.h"
#include "proto.h"

/* The ArrayObject schema of the served openapi.json (new reference), or NULL. */
static json_t *array_object_schema(void)
{
    size_t len = 0;
    const char *text = slp_openapi_json(&len);
    json_error_t err;
    json_t *doc = json_loadb(text, len, 0, &err);
    CHECK(doc != NULL);
    json_t *o = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                                "ArrayObject"); /* borrowed */
    json_incref(o);
    json_decref(doc);
    return o;
}

/* The "allOf" entry whose "if" is exactly cond (a JSON text), or NULL (borrowed). */
static json_t *rule(json_t *schema, const char *cond)
{
    json_t *want = json_loads(cond, 0, NULL);
    json_t *all = json_object_get(schema, "allOf"), *found = NULL, *r;
    size_t i;
    json_array_foreach(all, i, r)
    {
        if (json_equal(json_object_get(r, "if"), want)) {
            found = r;
        }
    }
    json_decref(want);
    return found;
}

/* Checks that the enum list e holds exactly the names of the table's rows for which pick says
 * 1, in the table's order. */
static void check_enum(const json_t *e, int (*pick)(const struct slp__format *), const char *what)
{
    int n;
    const struct slp__format *t = slp__format_table(&n);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (!pick(&t[i])) {
            continue;
        }
        const char *s = json_string_value(json_array_get(e, k++));
        if (!s || strcmp(s, t[i].name) != 0) {
            fprintf(stderr, "%s: row %d '%s' is not openapi.json's '%s'\n", what, i, t[i].name,
                    s ? s : "(none)");
        }
        CHECK(s && strcmp(s, t[i].name) == 0);
    }
    CHECK_INT(json_array_size(e), k);
}

static int every(const struct slp__format *f)
{
    (void)f;
    return 1;
}

static int takes_part(const struct slp__format *f)
{
    return (f->accepts & SLP__FMT_PART) != 0;
}

static int no_compression(const struct slp__format *f)
{
    return (f->accepts & SLP__FMT_COMPRESSION) == 0;
}

static void test_openapi(void)
{
    json_t *s = array_object_schema();
    CHECK(s != NULL);
    const json_t *fmt = json_object_get(json_object_get(s, "properties"), "format");
    check_enum(json_object_get(fmt, "enum"), every, "format enum");
    /* "part" only with npy and raw */
    json_t *r = rule(s, "{\"required\": [\"part\"]}");
    CHECK(r != NULL);
    check_enum(
        json_object_get(
            json_object_get(json_object_get(json_object_get(r, "then"), "properties"), "format"),
            "enum"),
        takes_part, "formats taking part");
    /* compression "none" only for the others: find the rule by its "then" */
    json_t *all = json_object_get(s, "allOf"), *x, *none = NULL;
    size_t i;
    json_array_foreach(all, i, x)
    {
        const json_t *c = json_object_get(json_object_get(json_object_get(x, "then"), "properties"),
                                          "compression");
        if (c && json_is_string(json_object_get(c, "const"))) {
            none = x;
        }
    }
    CHECK(none != NULL);
    check_enum(
        json_object_get(
            json_object_get(json_object_get(json_object_get(none, "if"), "properties"), "format"),
            "enum"),
        no_compression, "formats without compression");
    json_decref(s);
}

/* Runs slp_array_from_json on a JSON text; returns its code, the message in msg. */
static int run(const char *text, char *msg, size_t msglen)
{
    json_t *j = json_loads(text, 0, NULL);
    struct slp_array a;
    int rc = slp_array_from_json(j, "x", NULL, &a, msg, msglen);
    slp_array_free(&a);
    json_decref(j);
    return rc;
}

static void test_messages(void)
{
    char msg[512], names[128];
    /* openapi.json's list, in its order */
    slp__format_names(0, " or ", names, sizeof names);
    CHECK(strcmp(names, "npy, raw, list, rle or coco_rle") == 0);
    slp__format_names(SLP__FMT_PART, " and ", names, sizeof names);
    CHECK(strcmp(names, "npy and raw") == 0);
    CHECK_INT(run("{\"format\": \"png\", \"data\": \"\"}", msg, sizeof msg), SL_EINVAL);
    CHECK(strcmp(msg, "x.format: unknown format 'png' (expected npy, raw, list, rle or "
                      "coco_rle)") == 0);
    CHECK_INT(run("{\"data\": \"\"}", msg, sizeof msg), SL_EINVAL);
    CHECK(strcmp(msg, "x.format: required (npy, raw, list, rle or coco_rle)") == 0);
    CHECK_INT(run("{\"format\": \"list\", \"part\": \"p\"}", msg, sizeof msg), SL_EINVAL);
    CHECK(strcmp(msg, "x.part: format 'list' takes its values in \"data\", not a part (parts are "
                      "for npy and raw)") == 0);
    CHECK_INT(run("{\"format\": \"coco_rle\", \"part\": \"p\"}", msg, sizeof msg), SL_EINVAL);
    CHECK(strcmp(msg, "x.part: format 'coco_rle' takes its text in \"data\", not a part (parts "
                      "are for npy and raw)") == 0);
    CHECK_INT(run("{\"format\": \"rle\", \"compression\": \"gzip\", \"data\": \"\", \"shape\": "
                  "[2, 2]}",
                  msg, sizeof msg),
              SL_EINVAL);
    CHECK(strcmp(msg, "x.compression: not allowed with format 'rle' (npy and raw only)") == 0);
    CHECK_INT(
        run("{\"format\": \"list\", \"compression\": \"zlib\", \"data\": [1]}", msg, sizeof msg),
        SL_EINVAL);
    CHECK(strcmp(msg, "x.compression: only 'none' is allowed for format 'list' (compression is "
                      "for npy and raw)") == 0);
    CHECK_INT(run("{\"format\": \"raw\", \"dtype\": \"u8\", \"shape\": [1], \"data\": \"AA==\"}",
                  msg, sizeof msg),
              SL_EINVAL);
    CHECK(strcmp(msg, "x.dtype: unknown dtype 'u8' (expected bool, uint8, int8, uint16, int16, "
                      "uint32, int32, int64, float16, float32, float64 or bfloat16)") == 0);
    CHECK_INT(run("{\"format\": \"raw\", \"compression\": \"xz\", \"dtype\": \"uint8\", "
                  "\"shape\": [1], \"data\": \"AA==\"}",
                  msg, sizeof msg),
              SL_EINVAL);
    CHECK(strcmp(msg, "x.compression: unknown compression 'xz' (expected none, gzip, zlib, "
                      "deflate, auto or zstd)") == 0);
    /* a .npy header (v1.0, 128 bytes as NumPy pads it) of a dtype the API lacks */
    static const char dict[] = "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }";
    unsigned char npy[128];
    memset(npy, ' ', sizeof npy);
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(npy + 10, dict, sizeof dict - 1);
    npy[127] = '\n';
    enum sl_dtype dt;
    int ndim, fortran;
    int64_t shape[SL_MAX_DIMS];
    size_t off;
    CHECK_INT(
        slp_npy_header(npy, sizeof npy, &dt, &ndim, shape, &fortran, &off, "x", msg, sizeof msg),
        SL_EUNSUPPORTED);
    CHECK(strcmp(msg, "x: npy dtype '<c8' is not supported (bool, uint8, int8, uint16, int16, "
                      "uint32, int32, int64, float16, float32, float64 are)") == 0);
    /* what np.save writes for a bfloat16 (ml_dtypes) array: the message points to raw */
    memcpy(npy + 10, "{'descr': '<V2', 'fortran_order': False, 'shape': (2,), }", sizeof dict - 1);
    CHECK_INT(
        slp_npy_header(npy, sizeof npy, &dt, &ndim, shape, &fortran, &off, "x", msg, sizeof msg),
        SL_EUNSUPPORTED);
    CHECK(strcmp(msg, "x: npy dtype '<V2' is not supported (bool, uint8, int8, uint16, int16, "
                      "uint32, int32, int64, float16, float32, float64 are); a bfloat16 array "
                      "has no npy dtype (NumPy saves one as 'V2'): send its bytes as format "
                      "'raw' with \"dtype\": \"bfloat16\"") == 0);
    /* an npy array declared bfloat16: the same pointer (a float16 .npy of 2 elements) */
    CHECK_INT(run("{\"format\": \"npy\", \"dtype\": \"bfloat16\", \"data\": \""
                  "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3No"
                  "YXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
                  "ICAgICAgICAgICAgICAgICAgIAoAPAA8\"}",
                  msg, sizeof msg),
              SL_EINVAL);
    CHECK(strcmp(msg, "x.dtype: .npy has no bfloat16 (NumPy lacks the dtype): send the array's "
                      "bytes as format 'raw' with \"dtype\": \"bfloat16\" and its \"shape\"") == 0);
}

/* Every row's decoder is reached by its name: one 1 x 2 x 2 mask [1, 0, 0, 1] (row-major) each. */
static void test_rows(void)
{
    static const char *const bodies[] = {
        /* npy: magic, v1.0, the dict {'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }
         * padded with spaces and a newline to 64 bytes as NumPy writes it, then 1 0 0 1 */
        "{\"format\": \"npy\", \"data\": \""
        "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzog"
        "KDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
        "ICAgICAgIAoBAAAB"
        "\"}",
        "{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [2, 2], \"data\": \"AQAAAQ==\"}",
        "{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [[1, 0], [0, 1]]}",
        /* column-major runs: pixel 1 (r0 c0), pixel 4 (r1 c1) */
        "{\"format\": \"rle\", \"shape\": [2, 2], \"data\": \"1 1 4 1\"}",
        "{\"format\": \"coco_rle\", \"data\": {\"size\": [2, 2], \"counts\": [0, 1, 2, 1]}}",
    };
    int n;
    slp__format_table(&n);
    CHECK_INT(n, 5);
    for (int i = 0; i < n && i < 5; i++) {
        json_t *j = json_loads(bodies[i], 0, NULL);
        struct slp_array a;
        char msg[256] = "";
        int rc = slp_array_from_json(j, "x", NULL, &a, msg, sizeof msg);
        if (rc) {
            fprintf(stderr, "row %d: %s\n", i, msg);
        }
        CHECK_INT(rc, 0);
        const unsigned char *p = a.t.data;
        CHECK(rc == 0 && a.t.dtype == SL_DT_U8 && p[0] == 1 && p[1] == 0 && p[2] == 0 && p[3] == 1);
        slp_array_free(&a);
        json_decref(j);
    }
    slp_array_free(NULL); /* every _free of proto/ accepts NULL */
}

static const struct check_test tests[] = {
    CHECK_TEST(test_openapi),
    CHECK_TEST(test_messages),
    CHECK_TEST(test_rows),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_formats", tests);
}
