/* chal_forms.c - the images of a challenge's reference or submission (CHALLENGES.md "Reference",
 * "Submissions"): the JSON form (a stacked [N, *S] array split into N images), the multipart
 * forms (one .npy part per image; Kaggle CSV with a shape), id lists, and the bundle the store
 * keeps. The .npy parts and the bundle's files are decoded by proto/array.c's format "npy" with
 * a "part" (no second npy reader). Kaggle rows follow the API's "rle" format (fmt_rle.c): pixels
 * numbered from 1, column-major (down each column, then the next column, as Kaggle's masks
 * are); they are read here because rows of one image merge into one mask (csv_row_runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"
#include "challenge.h"

/* The array name handed to array.c's decoders; its messages are relabelled afterwards (a
 * control character appears in no user text that a message quotes). */
#define TAG "\x01"

/* ---- helpers ---- */

/* Replaces every occurrence of from in msg (msglen bytes) by to, as far as it fits. */
static void relabel(char *msg, size_t msglen, const char *from, const char *to)
{
    char out[512];
    size_t o = 0, flen = strlen(from), tlen = strlen(to);
    if (!msg || !msglen) {
        return;
    }
    for (const char *p = msg; *p && o + 1 < sizeof out;) {
        if (strncmp(p, from, flen) == 0) {
            size_t k = tlen < sizeof out - 1 - o ? tlen : sizeof out - 1 - o;
            memcpy(out + o, to, k);
            o += k;
            p += flen;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    snprintf(msg, msglen, "%s", out);
}

/* Whether s[0..n) is an image id: [A-Za-z0-9._-]{1,128}. */
static bool id_ok(const char *s, size_t n)
{
    if (n < 1 || n > SLC_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

/* Copies s[0..n) into buf (bufsize bytes) for a message: printable ASCII kept, other bytes '?',
 * cut at 64 bytes with "...". */
static void quote(const char *s, size_t n, char *buf, size_t bufsize)
{
    size_t k = 0;
    for (; k < n && k < 64 && k + 4 < bufsize; k++) {
        unsigned char ch = (unsigned char)s[k];
        buf[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (k < n && k + 4 <= bufsize) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
}

#define ID_RULE "an image id is 1 to 128 of A-Z, a-z, 0-9, '.', '_' and '-'"

void slc_images_free(struct slc_images *imgs)
{
    if (!imgs) {
        return;
    }
    for (size_t i = 0; i < imgs->n; i++) {
        slp_array_free(&imgs->items[i].a);
    }
    free(imgs->items);
    free(imgs->note);
    free(imgs);
}

/* A new empty image list with room for cap images; a note ("") when role is a submission. */
static struct slc_images *images_new(size_t cap, enum slc_role role)
{
    struct slc_images *im = calloc(1, sizeof *im);
    if (!im) {
        return NULL;
    }
    im->items = calloc(cap ? cap : 1, sizeof *im->items);
    if (!im->items || (role == SLC_SUBMISSION && !(im->note = strdup("")))) {
        slc_images_free(im);
        return NULL;
    }
    return im;
}

/* Doubles the room of im->items (*cap of them, all used). Returns 0 or SL_ENOMEM. */
static int grow(struct slc_images *im, size_t *cap)
{
    struct slc_image *more = realloc(im->items, 2 * *cap * sizeof *more);
    if (!more) {
        return SL_ENOMEM;
    }
    memset(more + *cap, 0, *cap * sizeof *more);
    im->items = more;
    *cap *= 2;
    return 0;
}

/* Sets im's note from s[0..n) (a submission's note: UTF-8, at most SLC_NOTE_MAX code points,
 * no NUL). where names it in messages ("note", "part 'note'"). */
static int set_note(struct slc_images *im, const char *s, size_t n, const char *where, char *msg,
                    size_t msglen)
{
    size_t cps = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        size_t k = ch < 0x80         ? 1
                   : (ch >> 5) == 6  ? 2
                   : (ch >> 4) == 14 ? 3
                   : (ch >> 3) == 30 ? 4
                                     : 0;
        int ok = k && ch != 0 && i + k <= n && (k != 2 || ch >= 0xc2);
        for (size_t j = 1; ok && j < k; j++) {
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        }
        if (ok && k > 2) {
            /* overlong, surrogates and past U+10FFFF */
            unsigned c1 = (unsigned char)s[i + 1];
            ok = k == 3 ? !(ch == 0xe0 && c1 < 0xa0) && !(ch == 0xed && c1 >= 0xa0)
                        : ch <= 0xf4 && !(ch == 0xf0 && c1 < 0x90) && !(ch == 0xf4 && c1 >= 0x90);
        }
        if (!ok) {
            slp__errf(msg, msglen, "%s: not UTF-8 text (byte %zu)", where, i);
            return SL_EINVAL;
        }
        i += k;
        cps++;
    }
    if (cps > SLC_NOTE_MAX) {
        slp__errf(msg, msglen, "%s: %zu characters, at most %d", where, cps, SLC_NOTE_MAX);
        return SL_EINVAL;
    }
    char *t = malloc(n + 1);
    if (!t) {
        slp__errf(msg, msglen, "%s: out of memory", where);
        return SL_ENOMEM;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    free(im->note);
    im->note = t;
    return 0;
}

/* ---- id lists ---- */

void slc_ids_free(char **ids, size_t n)
{
    if (!ids) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
    }
    free(ids);
}

/* An id and its place in the list, sorted to find repeats. */
struct id_at {
    const char *id;
    size_t i;
};

static int id_at_cmp(const void *a, const void *b)
{
    const struct id_at *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Finds a repeated id among ids[0..n): SL_EINVAL naming the later one name[i], else 0. */
static int find_repeat(const char *const *ids, size_t n, const char *name, char *msg, size_t msglen)
{
    if (n < 2) {
        return 0;
    }
    struct id_at *s = malloc(n * sizeof *s);
    if (!s) {
        slp__errf(msg, msglen, "%s: out of memory", name);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s[i].id = ids[i];
        s[i].i = i;
    }
    qsort(s, n, sizeof *s, id_at_cmp);
    size_t first = n, later = n; /* the repeat with the smallest later index */
    for (size_t k = 1; k < n; k++) {
        if (strcmp(s[k].id, s[k - 1].id) == 0 && s[k].i < later) {
            later = s[k].i;
            first = s[k - 1].i;
        }
    }
    free(s);
    if (later < n) {
        slp__errf(msg, msglen, "%s[%zu]: '%s' repeats %s[%zu] (ids must be distinct)", name, later,
                  ids[later], name, first);
        return SL_EINVAL;
    }
    return 0;
}

int slc_ids_parse(const json_t *j, const char *name, char ***out, size_t *n, char *msg,
                  size_t msglen)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(j)) {
        slp__errf(msg, msglen, "%s: expected a list of image ids (strings)", name);
        return SL_EINVAL;
    }
    size_t cnt = json_array_size(j);
    char **ids = calloc(cnt ? cnt : 1, sizeof *ids);
    if (!ids) {
        slp__errf(msg, msglen, "%s: out of memory", name);
        return SL_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < cnt && !rc; i++) {
        const json_t *e = json_array_get(j, i);
        const char *s = json_string_value(e);
        if (!s || !id_ok(s, json_string_length(e))) {
            char q[80] = "";
            if (s) {
                quote(s, json_string_length(e), q, sizeof q);
            }
            slp__errf(msg, msglen, "%s[%zu]: %s%s%s (%s)", name, i, s ? "'" : "",
                      s ? q : "expected a string", s ? "' is not an image id" : "", ID_RULE);
            rc = SL_EINVAL;
        } else if (!(ids[i] = strdup(s))) {
            slp__errf(msg, msglen, "%s: out of memory", name);
            rc = SL_ENOMEM;
        }
    }
    if (!rc) {
        rc = find_repeat((const char *const *)ids, cnt, name, msg, msglen);
    }
    if (rc) {
        slc_ids_free(ids, cnt);
        return rc;
    }
    *out = ids;
    *n = cnt;
    return 0;
}

/* ---- the JSON form ---- */

/* Spec keys a body may not carry (the challenge's spec applies). */
static const char *const spec_keys[] = {
    "mode",    "prediction_type",    "losses",    "metrics", "ignore_index", "threshold", "empty",
    "spacing", "include_background", "per_image", "weight",  "instances",    NULL};

/* Splits the stacked array a ([N, *S], N = nids) into n images of im named ids (ids NULL:
 * "0".."N-1"), copying each slice into its own buffer. */
static int split_stacked(const struct slp_array *a, char **ids, struct slc_images *im,
                         const char *name, char *msg, size_t msglen)
{
    int64_t n = a->t.shape[0];
    size_t isz = sl_dtype_size(a->t.dtype);
    int64_t per = 1;
    for (int k = 1; k < a->t.ndim; k++) {
        per *= a->t.shape[k];
    }
    size_t nbytes = (size_t)per * isz;
    for (int64_t i = 0; i < n; i++) {
        struct slc_image *img = &im->items[i];
        void *buf = malloc(nbytes ? nbytes : 1);
        if (!buf) {
            slp__errf(msg, msglen, "%s: out of memory", name);
            return SL_ENOMEM;
        }
        memcpy(buf, (const char *)a->t.data + (size_t)i * nbytes, nbytes);
        img->a.buf = buf;
        img->a.t.data = buf;
        img->a.t.dtype = a->t.dtype;
        img->a.t.ndim = a->t.ndim - 1;
        memcpy(img->a.t.shape, a->t.shape + 1, sizeof(int64_t) * (size_t)(a->t.ndim - 1));
        if (ids) {
            snprintf(img->id, sizeof img->id, "%s", ids[i]);
        } else {
            snprintf(img->id, sizeof img->id, "%lld", (long long)i);
        }
        im->n++;
    }
    return 0;
}

/* The keys of a JSON body: the array, ids and note; a spec key or another key is refused. */
static int check_body_keys(const json_t *root, enum slc_role role, char *msg, size_t msglen)
{
    const char *arr = role == SLC_REFERENCE ? "target" : "prediction";
    const char *sends = role == SLC_REFERENCE ? "a reference sends target and ids only"
                                              : "a submission sends prediction, ids and note only";
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, arr) == 0 || strcmp(key, "ids") == 0 ||
            (role == SLC_SUBMISSION && strcmp(key, "note") == 0)) {
            continue;
        }
        for (int i = 0; spec_keys[i]; i++) {
            if (strcmp(key, spec_keys[i]) == 0) {
                slp__errf(msg, msglen, "%s: the challenge's spec applies; %s", key, sends);
                return SL_EINVAL;
            }
        }
        slp__errf(msg, msglen, "%.64s: unknown key; %s", key, sends);
        return SL_EINVAL;
    }
    if (!json_object_get(root, arr)) {
        slp__errf(msg, msglen, "%s: required", arr);
        return SL_EINVAL;
    }
    return 0;
}

int slc_images_from_json(const char *body, size_t len, enum slc_role role,
                         const struct slp_limits *lim, struct slc_images **out, char *msg,
                         size_t msglen)
{
    struct slp_limits deflim;
    struct slp__jdoc doc;
    json_t *root = NULL;
    struct slp_array a = {0};
    char **ids = NULL;
    size_t nids = 0;
    struct slc_images *im = NULL;
    const char *name = role == SLC_REFERENCE ? "target" : "prediction";
    *out = NULL;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    lim = slp__limits_or_default(lim, &deflim);
    memset(&doc, 0, sizeof doc);
    int rc = slp__json_load(body, len, lim, NULL, &doc, &root, msg, msglen);
    if (rc) {
        return rc;
    }
    if (!json_is_object(root)) {
        slp__errf(msg, msglen, "the body must be a JSON object {\"%s\": ARRAY, \"ids\": [...]}",
                  name);
        rc = SL_EINVAL;
        goto out;
    }
    rc = check_body_keys(root, role, msg, msglen);
    if (rc) {
        goto out;
    }
    const json_t *note = json_object_get(root, "note");
    if (note && !json_is_string(note)) {
        slp__errf(msg, msglen, "note: expected a string");
        rc = SL_EINVAL;
        goto out;
    }
    const json_t *jids = json_object_get(root, "ids");
    if (jids) {
        rc = slc_ids_parse(jids, "ids", &ids, &nids, msg, msglen);
        if (rc) {
            goto out;
        }
    }
    rc = slp__array_from_json_doc(json_object_get(root, name), name, lim, NULL, &doc, &a, msg,
                                  msglen);
    if (rc) {
        goto out;
    }
    if (a.t.ndim < 2) {
        char sh[160];
        sl_format_shape(a.t.shape, a.t.ndim, sh, sizeof sh);
        slp__errf(msg, msglen, "%s: expected the images stacked, shape [N, *S], got %s", name, sh);
        rc = SL_ESHAPE;
        goto out;
    }
    int64_t n = a.t.shape[0];
    if (lim->max_images > 0 && n > lim->max_images) {
        slp__errf(msg, msglen, "%s: %lld images, over the limit of %lld (--max-images)", name,
                  (long long)n, (long long)lim->max_images);
        rc = SL_ETOOLARGE;
        goto out;
    }
    if (jids && (int64_t)nids != n) {
        slp__errf(msg, msglen, "ids: %zu ids for %lld images (%s has shape [%lld, ...])", nids,
                  (long long)n, name, (long long)n);
        rc = SL_ESHAPE;
        goto out;
    }
    im = images_new((size_t)n, role);
    if (!im) {
        slp__errf(msg, msglen, "out of memory");
        rc = SL_ENOMEM;
        goto out;
    }
    if (note) {
        rc = set_note(im, json_string_value(note), json_string_length(note), "note", msg, msglen);
    }
    if (!rc) {
        rc = split_stacked(&a, ids, im, name, msg, msglen);
    }
out:
    slp_array_free(&a);
    slc_ids_free(ids, nids);
    json_decref(root);
    slp__jdoc_free(&doc);
    if (rc) {
        slc_images_free(im);
        return rc;
    }
    *out = im;
    return 0;
}

/* ---- one .npy file ---- */

/* Decodes the .npy file data[0..len) (gzip'd when it starts with 1f 8b, zstd when with 28 b5 2f
 * fd: inflated by the npy decoder into exactly the size its header gives, so within lim) into *a;
 * messages name it label. */
static int decode_npy_file(const unsigned char *data, size_t len, const struct slp_limits *lim,
                           const char *label, struct slp_array *a, char *msg, size_t msglen)
{
    struct slp_part p = {TAG, data, len};
    struct slp_parts ps = {&p, 1};
    bool gz = len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    bool zs = len >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0;
    json_t *j = json_pack("{s:s, s:s, s:s}", "format", "npy", "part", TAG, "compression",
                          gz   ? "gzip"
                          : zs ? "zstd"
                               : "none");
    if (!j) {
        slp__errf(msg, msglen, "%s: out of memory", label);
        return SL_ENOMEM;
    }
    int rc = slp_array_from_json_parts(j, TAG, lim, &ps, a, msg, msglen);
    json_decref(j);
    if (rc) {
        relabel(msg, msglen, TAG " (part '" TAG "')", label);
        relabel(msg, msglen, TAG, label);
    }
    return rc;
}

/* ---- the multipart forms ---- */

/* The part called name, or NULL. */
static const struct slp_part *find_part(const struct slp_parts *parts, const char *name)
{
    for (int i = 0; i < parts->n; i++) {
        if (parts->items[i].name && strcmp(parts->items[i].name, name) == 0) {
            return &parts->items[i];
        }
    }
    return NULL;
}

/* The CSV form's "spec" part {"shape": [H, W]}. */
static int csv_shape(const struct slp_part *p, const struct slp_limits *lim, int64_t *h, int64_t *w,
                     char *msg, size_t msglen)
{
    struct slp__jdoc doc;
    json_t *root = NULL;
    memset(&doc, 0, sizeof doc);
    int rc = slp__json_load((const char *)p->data, p->len, lim, "spec", &doc, &root, msg, msglen);
    if (rc) {
        return rc;
    }
    const json_t *shape = json_object_get(root, "shape");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(shape) ||
        json_array_size(shape) != 2 || !json_is_integer(json_array_get(shape, 0)) ||
        !json_is_integer(json_array_get(shape, 1)) ||
        json_integer_value(json_array_get(shape, 0)) < 1 ||
        json_integer_value(json_array_get(shape, 1)) < 1) {
        slp__errf(msg, msglen,
                  "part 'spec': expected {\"shape\": [H, W]} with two positive integers, and no "
                  "other key (the challenge's spec applies)");
        rc = SL_EINVAL;
    } else {
        *h = (int64_t)json_integer_value(json_array_get(shape, 0));
        *w = (int64_t)json_integer_value(json_array_get(shape, 1));
    }
    json_decref(root);
    slp__jdoc_free(&doc);
    return rc;
}

static int parts_csv(const struct slp_parts *parts, enum slc_role role,
                     const struct slp_limits *lim, struct slc_images **out, char *msg,
                     size_t msglen)
{
    const struct slp_part *csv = find_part(parts, "csv");
    const struct slp_part *spec = find_part(parts, "spec");
    const struct slp_part *note = find_part(parts, "note");
    for (int i = 0; i < parts->n; i++) {
        const char *nm = parts->items[i].name ? parts->items[i].name : "";
        if (strcmp(nm, "csv") != 0 && strcmp(nm, "spec") != 0 &&
            !(role == SLC_SUBMISSION && strcmp(nm, "note") == 0)) {
            char q[80];
            quote(nm, strlen(nm), q, sizeof q);
            slp__errf(msg, msglen, "part '%s': the CSV form takes the parts csv, spec%s only", q,
                      role == SLC_SUBMISSION ? " and note" : "");
            return SL_EINVAL;
        }
    }
    if (!spec) {
        slp__errf(msg, msglen, "part 'spec': required with part 'csv' ({\"shape\": [H, W]})");
        return SL_EINVAL;
    }
    int64_t h = 0, w = 0;
    int rc = csv_shape(spec, lim, &h, &w, msg, msglen);
    if (!rc) {
        rc = slc_images_from_csv((const char *)csv->data, csv->len, h, w, lim, out, msg, msglen);
        if (rc) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "part 'csv': %s", msg ? msg : "");
            slp__errf(msg, msglen, "%s", tmp);
        }
    }
    if (rc) {
        return rc;
    }
    if (role == SLC_REFERENCE) {
        free((*out)->note);
        (*out)->note = NULL;
    } else if (note) {
        rc = set_note(*out, (const char *)note->data, note->len, "part 'note'", msg, msglen);
        if (rc) {
            slc_images_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

int slc_images_from_parts(const struct slp_parts *parts, enum slc_role role,
                          const struct slp_limits *lim, struct slc_images **out, char *msg,
                          size_t msglen)
{
    struct slp_limits deflim;
    *out = NULL;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    lim = slp__limits_or_default(lim, &deflim);
    if (find_part(parts, "csv")) {
        return parts_csv(parts, role, lim, out, msg, msglen);
    }
    struct slc_images *im = images_new((size_t)(parts->n > 0 ? parts->n : 0), role);
    if (!im) {
        slp__errf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < parts->n && !rc; i++) {
        const struct slp_part *p = &parts->items[i];
        const char *nm = p->name ? p->name : "";
        char q[80];
        quote(nm, strlen(nm), q, sizeof q);
        if (role == SLC_SUBMISSION && strcmp(nm, "note") == 0) {
            rc = set_note(im, (const char *)p->data, p->len, "part 'note'", msg, msglen);
            continue;
        }
        if (strcmp(nm, "spec") == 0 || strcmp(nm, "note") == 0) {
            slp__errf(msg, msglen, "part '%s': %s", nm,
                      strcmp(nm, "spec") == 0
                          ? "the challenge's spec applies (a part 'spec' goes only with a part "
                            "'csv', giving {\"shape\": [H, W]})"
                          : "a reference has no note");
            rc = SL_EINVAL;
            break;
        }
        if (!id_ok(nm, strlen(nm))) {
            slp__errf(msg, msglen, "part '%s': the part's name is the image id; %s", q, ID_RULE);
            rc = SL_EINVAL;
            break;
        }
        for (size_t k = 0; k < im->n; k++) {
            if (strcmp(im->items[k].id, nm) == 0) {
                slp__errf(msg, msglen, "part '%s': given twice (image ids are distinct)", nm);
                rc = SL_EINVAL;
            }
        }
        if (!rc && lim->max_images > 0 && (int64_t)im->n >= lim->max_images) {
            slp__errf(msg, msglen, "part '%s': over the limit of %lld images (--max-images)", nm,
                      (long long)lim->max_images);
            rc = SL_ETOOLARGE;
        }
        if (!rc) {
            char label[160];
            snprintf(label, sizeof label, "part '%s'", nm);
            rc = decode_npy_file(p->data, p->len, lim, label, &im->items[im->n].a, msg, msglen);
        }
        if (!rc) {
            snprintf(im->items[im->n].id, sizeof im->items[im->n].id, "%s", nm);
            im->n++;
        }
    }
    if (!rc && im->n == 0) {
        slp__errf(msg, msglen,
                  "the body holds no images (one .npy part per image, named by its id, or a "
                  "part 'csv' with a part 'spec')");
        rc = SL_EINVAL;
    }
    if (rc) {
        slc_images_free(im);
        return rc;
    }
    *out = im;
    return 0;
}

/* ---- Kaggle CSV ---- */

/* Index of the image called id in im (last first: rows of one id usually stand together), or
 * im->n. */
static size_t image_index(const struct slc_images *im, const char *id)
{
    for (size_t k = im->n; k-- > 0;) {
        if (strcmp(im->items[k].id, id) == 0) {
            return k;
        }
    }
    return im->n;
}

/* Reads the next whitespace-separated token of s[0..n) from *at as an unsigned integer
 * (saturated at 2^62, past any image) into *v. Returns 1, 0 at the end, or -1 when the token is
 * not all digits (*tb, *tl: where it stands, for messages). */
static int csv_token(const char *s, size_t n, size_t *at, uint64_t *v, size_t *tb, size_t *tl)
{
    size_t i = *at;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (i == n) {
        *at = i;
        return 0;
    }
    size_t b = i;
    while (i < n && s[i] != ' ' && s[i] != '\t') {
        i++;
    }
    *at = i;
    *tb = b;
    *tl = i - b;
    *v = 0;
    for (size_t k = b; k < i; k++) {
        if (s[k] < '0' || s[k] > '9') {
            return -1;
        }
        *v = *v >= ((uint64_t)1 << 62) / 10 ? (uint64_t)1 << 62 : *v * 10 + (uint64_t)(s[k] - '0');
    }
    return 1;
}

/* Sets the pixels of the EncodedPixels s[0..n) of line `line` (ImageId id) to 1 in the C-order
 * h x w mask. The rules are those of the API's "rle" format (fmt_rle.c): pairs "start length",
 * starts 1-based and column-major (pixel p is row (p - 1) % h, column (p - 1) / h), lengths
 * positive, runs sorted and apart, "-" or nothing an empty mask. Rows of one id are merged
 * (their runs may overlap), so the runs are written straight into the image's mask rather than
 * through the rle decoder, which would make a whole mask for every row. */
static int csv_row_runs(const char *s, size_t n, int64_t h, int64_t w, uint8_t *mask, size_t line,
                        const char *id, char *msg, size_t msglen)
{
    uint64_t hw = (uint64_t)h * (uint64_t)w, prev_end = 0;
    size_t at = 0, pair = 0, tb = 0, tl = 0, tok = 0;
    char q[80];
    if (n == 1 && s[0] == '-') {
        return 0;
    }
    for (;;) {
        uint64_t st = 0, ln = 0;
        int r = csv_token(s, n, &at, &st, &tb, &tl);
        if (r == 0) {
            return 0;
        }
        tok++;
        if (r > 0) {
            r = csv_token(s, n, &at, &ln, &tb, &tl);
            tok += r != 0;
        }
        pair++;
        if (r < 0) {
            quote(s + tb, tl, q, sizeof q);
            slp__errf(msg, msglen,
                      "line %zu (ImageId '%s') EncodedPixels: token %zu ('%s') is not a "
                      "positive integer (expected space-separated 'start length' pairs)",
                      line, id, tok, q);
            return SL_EINVAL;
        }
        if (r == 0) {
            slp__errf(msg, msglen,
                      "line %zu (ImageId '%s') EncodedPixels: odd number of tokens: pair %zu "
                      "(start %llu) has no length",
                      line, id, pair, (unsigned long long)st);
            return SL_ERANGE;
        }
        if (st == 0 || ln == 0) {
            slp__errf(msg, msglen,
                      "line %zu (ImageId '%s') EncodedPixels: pair %zu (start %llu, length %llu): "
                      "%s must be a positive integer (starts are 1-based)",
                      line, id, pair, (unsigned long long)st, (unsigned long long)ln,
                      st == 0 ? "start" : "length");
            return SL_ERANGE;
        }
        if (st > hw || ln > hw - st + 1) {
            slp__errf(msg, msglen,
                      "line %zu (ImageId '%s') EncodedPixels: pair %zu (start %llu, length %llu) "
                      "runs past the last pixel %llu of a %lld x %lld image",
                      line, id, pair, (unsigned long long)st, (unsigned long long)ln,
                      (unsigned long long)hw, (long long)h, (long long)w);
            return SL_ERANGE;
        }
        if (st <= prev_end) {
            slp__errf(msg, msglen,
                      "line %zu (ImageId '%s') EncodedPixels: pair %zu (start %llu, length %llu) "
                      "starts at or before the end %llu of pair %zu (runs are sorted and apart)",
                      line, id, pair, (unsigned long long)st, (unsigned long long)ln,
                      (unsigned long long)prev_end, pair - 1);
            return SL_ERANGE;
        }
        /* column-major run from 0-based pixel st - 1 into the C-order mask */
        int64_t r0 = (int64_t)(st - 1) % h, c0 = (int64_t)(st - 1) / h;
        for (uint64_t k = 0; k < ln; k++) {
            mask[r0 * w + c0] = 1;
            if (++r0 == h) {
                r0 = 0;
                c0++;
            }
        }
        prev_end = st + ln - 1;
    }
}

/* Whether s[0..n) equals lower-case word w, ignoring ASCII case. */
static bool same_word(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != w[i]) {
            return false;
        }
    }
    return true;
}

int slc_images_from_csv(const char *text, size_t len, int64_t h, int64_t w,
                        const struct slp_limits *lim, struct slc_images **out, char *msg,
                        size_t msglen)
{
    struct slp_limits deflim;
    *out = NULL;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    lim = slp__limits_or_default(lim, &deflim);
    if (h < 1 || w < 1 || h > lim->max_elements / w || (uint64_t)(h * w) > lim->max_array_bytes) {
        slp__errf(msg, msglen,
                  "shape [%lld, %lld]: an image is over the limit of %lld elements and %zu "
                  "bytes",
                  (long long)h, (long long)w, (long long)lim->max_elements, lim->max_array_bytes);
        return h < 1 || w < 1 ? SL_EINVAL : SL_ETOOLARGE;
    }
    int64_t most = lim->max_images > 0 ? lim->max_images : 4096;
    size_t cap = 8;
    struct slc_images *im = images_new(cap, SLC_SUBMISSION);
    if (!im) {
        slp__errf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    size_t at = 0, line = 0;
    int rc = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        at = 3; /* a UTF-8 byte order mark, as spreadsheet programs write */
    }
    while (at < len && !rc) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + at;
        size_t n = end - at;
        at = end + 1;
        line++;
        if (n && s[n - 1] == '\r') {
            n--;
        }
        const char *comma = memchr(s, ',', n);
        if (line == 1) {
            if (!comma || !same_word(s, (size_t)(comma - s), "imageid") ||
                !same_word(comma + 1, n - (size_t)(comma - s) - 1, "encodedpixels")) {
                slp__errf(msg, msglen, "line 1: expected the header ImageId,EncodedPixels");
                rc = SL_EINVAL;
            }
            continue;
        }
        if (n == 0) {
            continue; /* a blank line, such as after the last row */
        }
        char q[80];
        if (!comma || memchr(comma + 1, ',', n - (size_t)(comma - s) - 1)) {
            quote(s, n, q, sizeof q);
            slp__errf(msg, msglen, "line %zu: expected two fields ImageId,EncodedPixels, got '%s'",
                      line, q);
            rc = SL_EINVAL;
            break;
        }
        size_t idlen = (size_t)(comma - s);
        if (!id_ok(s, idlen)) {
            quote(s, idlen, q, sizeof q);
            slp__errf(msg, msglen, "line %zu: ImageId '%s': %s", line, q, ID_RULE);
            rc = SL_EINVAL;
            break;
        }
        char id[SLC_ID_MAX + 1];
        memcpy(id, s, idlen);
        id[idlen] = '\0';
        size_t k = image_index(im, id);
        if (k == im->n && (int64_t)im->n >= most) {
            slp__errf(msg, msglen, "line %zu: ImageId '%s' is over the limit of %lld images%s",
                      line, id, (long long)most, lim->max_images > 0 ? " (--max-images)" : "");
            rc = SL_ETOOLARGE;
            break;
        }
        if (k == cap && grow(im, &cap) != 0) {
            slp__errf(msg, msglen, "out of memory");
            rc = SL_ENOMEM;
            break;
        }
        if (k == im->n) {
            /* a new image: an empty h x w mask (its size checked once, above) */
            struct slp_array *a = &im->items[k].a;
            a->buf = calloc((size_t)(h * w), 1);
            if (!a->buf) {
                slp__errf(msg, msglen, "line %zu: out of memory", line);
                rc = SL_ENOMEM;
                break;
            }
            a->t.data = a->buf;
            a->t.dtype = SL_DT_U8;
            a->t.ndim = 2;
            a->t.shape[0] = h;
            a->t.shape[1] = w;
            snprintf(im->items[k].id, sizeof im->items[k].id, "%s", id);
            im->n++;
        }
        rc =
            csv_row_runs(comma + 1, n - idlen - 1, h, w, im->items[k].a.buf, line, id, msg, msglen);
    }
    if (!rc && line == 0) {
        slp__errf(msg, msglen, "line 1: expected the header ImageId,EncodedPixels");
        rc = SL_EINVAL;
    }
    if (!rc && im->n == 0) {
        slp__errf(msg, msglen,
                  "no rows after the header (one row ImageId,EncodedPixels per image)");
        rc = SL_EINVAL;
    }
    if (rc) {
        slc_images_free(im);
        return rc;
    }
    *out = im;
    return 0;
}

/* ---- the bundle ---- */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static int image_ptr_cmp(const void *a, const void *b)
{
    const struct slc_image *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

int slc_bundle_write(const struct slc_images *imgs, struct slp_dynbuf *b)
{
    const struct slc_image **order = malloc((imgs->n ? imgs->n : 1) * sizeof *order);
    if (!order) {
        return b->err ? b->err : SL_ENOMEM;
    }
    for (size_t i = 0; i < imgs->n; i++) {
        order[i] = &imgs->items[i];
    }
    qsort(order, imgs->n, sizeof *order, image_ptr_cmp);
    unsigned char count[4];
    put_le(count, imgs->n, 4);
    slp_dynbuf_add(b, SLC_BUNDLE_MAGIC, 8);
    slp_dynbuf_add(b, count, 4);
    for (size_t i = 0; i < imgs->n && !b->err; i++) {
        const struct slc_image *img = order[i];
        char hdr[512];
        size_t hlen =
            slp_npy_write_header(img->a.t.dtype, img->a.t.shape, img->a.t.ndim, 0, hdr, sizeof hdr);
        size_t nbytes = (size_t)sl_tensor_numel(&img->a.t) * sl_dtype_size(img->a.t.dtype);
        unsigned char len4[4], len8[8];
        size_t idlen = strlen(img->id);
        put_le(len4, idlen, 4);
        put_le(len8, hlen + nbytes, 8);
        slp_dynbuf_add(b, len4, 4);
        slp_dynbuf_add(b, img->id, idlen);
        slp_dynbuf_add(b, len8, 8);
        slp_dynbuf_add(b, hdr, hlen);
        slp_dynbuf_add(b, img->a.t.data, nbytes);
    }
    free(order);
    return b->err;
}

int slc_bundle_read(const void *data, size_t len, const struct slp_limits *lim,
                    struct slc_images **out, char *msg, size_t msglen)
{
    struct slp_limits deflim;
    const unsigned char *p = data;
    size_t at = 0, cap = 16;
    int rc = 0;
    *out = NULL;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    lim = slp__limits_or_default(lim, &deflim);
    if (len < 12 || memcmp(p, SLC_BUNDLE_MAGIC, 8) != 0) {
        slp__errf(msg, msglen, "bundle: %s",
                  len < 12 ? "truncated in its first 12 bytes"
                           : "not a bundle (no magic " SLC_BUNDLE_MAGIC ")");
        return SL_EMALFORMED;
    }
    uint64_t count = get_le(p + 8, 4);
    if (lim->max_images > 0 && count > (uint64_t)lim->max_images) {
        slp__errf(msg, msglen, "bundle: %llu images, over the limit of %lld (--max-images)",
                  (unsigned long long)count, (long long)lim->max_images);
        return SL_ETOOLARGE;
    }
    at = 12;
    struct slc_images *im = images_new(cap, SLC_REFERENCE);
    if (!im) {
        slp__errf(msg, msglen, "bundle: out of memory");
        return SL_ENOMEM;
    }
    while (!rc && (at < len || im->n < count)) {
        if (im->n == count) {
            slp__errf(msg, msglen, "bundle: %zu bytes after the last of its %llu images", len - at,
                      (unsigned long long)count);
            rc = SL_EMALFORMED;
            break;
        }
        size_t k = im->n;
        if (len - at < 4) {
            slp__errf(msg, msglen, "bundle: truncated at byte %zu (image %zu's id length)", at, k);
            rc = SL_EMALFORMED;
            break;
        }
        uint64_t idlen = get_le(p + at, 4);
        at += 4;
        if (idlen < 1 || idlen > SLC_ID_MAX || idlen > len - at) {
            slp__errf(msg, msglen, "bundle: image %zu: bad id length %llu at byte %zu", k,
                      (unsigned long long)idlen, at - 4);
            rc = SL_EMALFORMED;
            break;
        }
        const char *id = (const char *)p + at;
        if (!id_ok(id, (size_t)idlen)) {
            slp__errf(msg, msglen, "bundle: image %zu: not an image id at byte %zu", k, at);
            rc = SL_EMALFORMED;
            break;
        }
        at += (size_t)idlen;
        if (k > 0) {
            const char *prev = im->items[k - 1].id;
            size_t plen = strlen(prev), m = plen < idlen ? plen : (size_t)idlen;
            int c = memcmp(prev, id, m);
            if (c > 0 || (c == 0 && plen >= idlen)) {
                slp__errf(msg, msglen, "bundle: image %zu: id '%.*s' %s '%s' (ids ascend)", k,
                          (int)idlen, id, c == 0 && plen == idlen ? "repeats" : "comes after",
                          prev);
                rc = SL_EMALFORMED;
                break;
            }
        }
        if (len - at < 8) {
            slp__errf(msg, msglen, "bundle: image '%.*s': truncated at byte %zu (its npy length)",
                      (int)idlen, id, at);
            rc = SL_EMALFORMED;
            break;
        }
        uint64_t nlen = get_le(p + at, 8);
        at += 8;
        if (nlen > len - at) {
            slp__errf(msg, msglen,
                      "bundle: image '%.*s': npy length %llu at byte %zu runs past the end (%zu "
                      "bytes left)",
                      (int)idlen, id, (unsigned long long)nlen, at - 8, len - at);
            rc = SL_EMALFORMED;
            break;
        }
        if (k == cap && grow(im, &cap) != 0) {
            slp__errf(msg, msglen, "bundle: out of memory");
            rc = SL_ENOMEM;
            break;
        }
        char label[200];
        snprintf(label, sizeof label, "bundle image '%.*s'", (int)idlen, id);
        /* a gzip or zstd magic inside a bundle is no .npy: refuse it rather than inflate */
        if ((nlen >= 2 && p[at] == 0x1f && p[at + 1] == 0x8b) ||
            (nlen >= 4 && memcmp(p + at, "\x28\xb5\x2f\xfd", 4) == 0)) {
            slp__errf(msg, msglen, "%s: not a .npy file", label);
            rc = SL_EMALFORMED;
            break;
        }
        rc = decode_npy_file(p + at, (size_t)nlen, lim, label, &im->items[k].a, msg, msglen);
        if (rc) {
            break;
        }
        memcpy(im->items[k].id, id, (size_t)idlen);
        im->items[k].id[idlen] = '\0';
        im->n++;
        at += (size_t)nlen;
    }
    if (rc) {
        slc_images_free(im);
        return rc;
    }
    *out = im;
    return 0;
}
