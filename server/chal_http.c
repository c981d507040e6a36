/* chal_http.c - the challenge routes (CHALLENGES.md "Routes"): authentication and thin
 * handlers between HTTP, the rules (chal_rules.h), the store (store.h) and the wire forms
 * (proto/challenge.h). Routes without a body answer on the I/O thread at completion (store
 * reads and short writes); routes with a body are checked at the headers (admit: who may send
 * it) and run on a compute worker like /v1/score.
 *
 * Authentication: "Authorization: Bearer TOKEN". The admin token's SHA-256 is compared in
 * constant time; a participant token is found by its SHA-256 in the store. A presented token
 * must be valid wherever it is sent (401 otherwise, with WWW-Authenticate: Bearer), a
 * participant's token works in its own challenge only, and a participant on an admin route is
 * 403. No token, hash or Authorization value is ever written to a log or an answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../proto/internal.h" /* proto/internal.h: slp__parse_spec, the JSON writers */
#include "chal_internal.h"
#include "sha256.h"

#define WWW_AUTH "WWW-Authenticate"
#define WWW_AUTH_VALUE "Bearer realm=\"segloss\""

static const char off_detail[] =
    "challenges are off on this server; start seglossd with --data-dir DIR (env "
    "SEGLOSS_DATA_DIR) to turn them on";

/* ---- small helpers ------------------------------------------------------------------------ */

/* Now, in microseconds since the epoch. */
static chal_time now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (chal_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A new JSON string of time t (RFC 3339, Z), or null for none. */
static json_t *time_json(chal_time t)
{
    if (t == INT64_MIN || t == INT64_MAX) {
        return json_null();
    }
    char buf[40];
    chal_time_format(t, buf, sizeof buf);
    return json_string(buf);
}

/* Fills resp with j (stolen) as an application/json answer of status. */
static void resp_json(struct slp_response *resp, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        slp_problem(503, "out of memory writing the answer", resp);
        return;
    }
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = s;
    resp->len = strlen(s);
}

/* Fills resp with a problem+json answer of status and a printf-style detail. */
static void resp_problem(struct slp_response *resp, int status, const char *fmt, ...)
    SRV_PRINTF(3, 4);
static void resp_problem(struct slp_response *resp, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    slp_problem(status, detail, resp);
}

/* Queues resp (I/O thread) with one optional extra header. */
static enum MHD_Result reply_resp(struct srv_req *req, struct slp_response *resp, const char *hname,
                                  const char *hval)
{
    const char *const hdrs[] = {hname, hval, NULL};
    return srv_reply_response(req, resp, hname ? hdrs : NULL);
}

/* Queues a JSON answer (j stolen) on the I/O thread. */
static enum MHD_Result reply_json(struct srv_req *req, int status, json_t *j)
{
    struct slp_response r = {0};
    resp_json(&r, status, j);
    return reply_resp(req, &r, NULL, NULL);
}

/* Queues a problem answer; a 401 carries WWW-Authenticate. */
static enum MHD_Result reply_problem(struct srv_req *req, int status, const char *fmt, ...)
    SRV_PRINTF(3, 4);
static enum MHD_Result reply_problem(struct srv_req *req, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return srv_reply_problem(req, status, detail, status == 401 ? WWW_AUTH : NULL,
                             status == 401 ? WWW_AUTH_VALUE : NULL);
}

/* Logs a store failure (never a token: store messages hold none). */
static void log_store(const char *what, const char *msg)
{
    fprintf(stderr, "seglossd: challenges: %s: %s\n", what, msg);
}

/* A query argument of req, or NULL. */
static const char *query(struct srv_req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- authentication ------------------------------------------------------------------------ */

/* Whether a and b (32 bytes) are equal, in time independent of where they differ. */
static bool same_hash(const unsigned char *a, const unsigned char *b)
{
    unsigned char d = 0;
    for (int i = 0; i < 32; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

/* Reads the request's token into req->auth. challenge: the route's challenge (NULL: none).
 * Returns 0, or 401 with the detail in buf. */
static int auth_read(struct srv_req *req, const char *challenge, char *buf, size_t n)
{
    struct chal_server *cs = req->srv->chal;
    memset(&req->auth, 0, sizeof req->auth);
    const char *h = srv_header(req->conn, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        return 0;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        snprintf(buf, n, "Authorization must be 'Bearer TOKEN'");
        return 401;
    }
    const char *tok = h + 7;
    while (*tok == ' ') {
        tok++;
    }
    size_t len = strlen(tok);
    while (len > 0 && tok[len - 1] == ' ') {
        len--;
    }
    if (len == 0 || len > 512) {
        snprintf(buf, n, "Authorization: the bearer token is empty or too long");
        return 401;
    }
    unsigned char hash[32];
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, tok, len);
    slp_sha256_final(&s, hash);
    if (same_hash(hash, cs->admin_hash)) {
        req->auth.who = WHO_ADMIN;
        return 0;
    }
    struct store_participant p;
    char msg[256];
    int rc = store_token_lookup(cs->store, hash, &p, msg, sizeof msg);
    if (rc == STORE_ENOTFOUND) {
        snprintf(buf, n, "unknown token");
        return 401;
    }
    if (rc) {
        log_store("token lookup", msg);
        snprintf(buf, n, "the token could not be checked (store unavailable)");
        return 503;
    }
    if (p.revoked) {
        snprintf(buf, n, "this token was revoked");
        return 401;
    }
    if (challenge && strcmp(p.challenge, challenge) != 0) {
        snprintf(buf, n, "this token belongs to another challenge");
        return 401;
    }
    req->auth.who = WHO_PARTICIPANT;
    req->auth.pid = p.id;
    snprintf(req->auth.name, sizeof req->auth.name, "%s", p.name);
    return 0;
}

/* What a route needs. */
enum need { NEED_ANYONE, NEED_PARTICIPANT, NEED_ADMIN, NEED_PARTICIPANT_OR_ADMIN };

/* Checks that challenges are on, who is asking, and the challenge name (a bad one is 422 on a
 * PUT, which may create it, 404 elsewhere). Returns 0 or the status, detail in buf. */
static int gate(struct srv_req *req, bool has_challenge, enum need need, char *buf, size_t n)
{
    if (!req->srv->chal) {
        snprintf(buf, n, "%s", off_detail);
        return 404;
    }
    const char *c = has_challenge ? req->params[0] : NULL;
    int st = auth_read(req, c, buf, n);
    if (st) {
        return st;
    }
    int who = req->auth.who;
    if (need == NEED_ADMIN && who != WHO_ADMIN) {
        snprintf(buf, n,
                 who == WHO_ANON ? "this route needs the admin token"
                                 : "this route is the organiser's: a participant's "
                                   "token may not use it");
        return who == WHO_ANON ? 401 : 403;
    }
    if (need == NEED_PARTICIPANT && who != WHO_PARTICIPANT) {
        snprintf(buf, n,
                 who == WHO_ANON ? "this route needs a participant's token"
                                 : "submissions belong to participants: use a "
                                   "participant's token (POST "
                                   "/v1/challenges/{c}/participants makes one)");
        return who == WHO_ANON ? 401 : 403;
    }
    if (need == NEED_PARTICIPANT_OR_ADMIN && who == WHO_ANON) {
        snprintf(buf, n, "this route needs a participant's or the admin token");
        return 401;
    }
    if (c && !chal_name_ok(c)) {
        snprintf(buf, n,
                 "'%.128s' is not a challenge name: [a-z0-9][a-z0-9-]{0,62} (lowercase letters, "
                 "digits and '-')",
                 c);
        return req->method_bit == SRV_PUT ? 422 : 404;
    }
    return 0;
}

/* An admit step: gate() with its answer noted for after the body. */
static int admit_with(struct srv_req *req, enum need need)
{
    int st = gate(req, true, need, req->in.fail_msg, sizeof req->in.fail_msg);
    if (st == 401) {
        req->in.fail_hdr[0] = WWW_AUTH;
        req->in.fail_hdr[1] = WWW_AUTH_VALUE;
    }
    return st;
}

int chal_admit_admin(struct srv_req *req)
{
    return admit_with(req, NEED_ADMIN);
}

int chal_admit_participant(struct srv_req *req)
{
    return admit_with(req, NEED_PARTICIPANT);
}

/* gate() for a route without a body; answers and returns true when refused. */
static bool gate_reply(struct srv_req *req, bool has_challenge, enum need need,
                       enum MHD_Result *ret)
{
    char buf[300];
    int st = gate(req, has_challenge, need, buf, sizeof buf);
    if (st) {
        *ret = reply_problem(req, st, "%s", buf);
        return true;
    }
    return false;
}

/* ---- the challenge and its configuration ------------------------------------------------ */

/* Loads challenge name and its configuration. Returns 0, or a status with the detail in buf. */
static int load_challenge(struct chal_server *cs, const char *name, const struct slp_limits *lim,
                          struct store_challenge *c, struct slc_config **cfg, char *buf, size_t n)
{
    char msg[256];
    memset(c, 0, sizeof *c);
    *cfg = NULL;
    int rc = store_challenge_get(cs->store, name, c, msg, sizeof msg);
    if (rc == STORE_ENOTFOUND) {
        snprintf(buf, n, "no challenge '%s'", name);
        return 404;
    }
    if (rc) {
        log_store("challenge get", msg);
        snprintf(buf, n, "the challenge store is unavailable");
        return 503;
    }
    rc = slc_config_parse(c->config, strlen(c->config), lim, cfg, msg, sizeof msg);
    if (rc) {
        log_store("stored configuration", msg);
        snprintf(buf, n, "challenge '%s': its stored configuration does not load: %s", name, msg);
        store_challenge_clear(c);
        return 500;
    }
    return 0;
}

/* The keys' list [{"key", "order"}] of n keys. */
static json_t *keys_json(const struct slc_key *k, int n, const struct slc_config *cfg)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        bool ranking = false;
        for (int r = 0; r < cfg->nranking; r++) {
            ranking = ranking || strcmp(cfg->ranking[r].key, k[i].key) == 0;
        }
        json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "key", k[i].key, "order",
                                           k[i].desc ? "desc" : "asc", "ranking", ranking));
    }
    return a;
}

/* The public description of challenge c (admin: with the split, public ids and reference
 * sha256). A new object. */
static json_t *describe(const struct store_challenge *c, const struct slc_config *cfg, bool admin)
{
    json_t *j = slc_config_json(cfg);
    if (!j) {
        return NULL;
    }
    if (!admin) {
        json_object_del(j, "split");
    }
    json_object_set_new(j, "name", json_string(c->name));
    json_object_set_new(j, "version", json_integer(c->version));
    json_object_set_new(j, "ranking", keys_json(cfg->ranking, cfg->nranking, cfg));
    json_object_set_new(j, "columns", keys_json(cfg->columns, cfg->ncolumns, cfg));
    json_t *ref = c->reference ? json_loads(c->reference, 0, NULL) : NULL;
    json_object_set_new(j, "reference", ref ? ref : json_null());
    if (admin && ref && c->public_ids) {
        json_t *pub = json_loads(c->public_ids, 0, NULL);
        json_object_set_new(ref, "public_ids", pub ? pub : json_null());
        json_object_set_new(ref, "sha256", json_string(c->ref_sha));
    }
    json_object_set_new(j, "participants", json_integer(c->participants));
    json_object_set_new(j, "submissions", json_integer(c->submissions));
    json_object_set_new(j, "rescore",
                        json_pack("{s:I, s:I, s:I, s:b}", "done", (json_int_t)c->rescore_done,
                                  "failed", (json_int_t)c->rescore_failed, "total",
                                  (json_int_t)c->rescore_total, "running", c->rescore_running));
    json_object_set_new(j, "created_at", time_json(c->created_at));
    json_object_set_new(j, "updated_at", time_json(c->updated_at));
    return j;
}

enum MHD_Result chal_h_list(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, false, NEED_ANYONE, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    struct store_challenge *list = NULL;
    size_t n = 0;
    char msg[256];
    if (store_challenge_list(cs->store, &list, &n, msg, sizeof msg) != 0) {
        log_store("challenge list", msg);
        return reply_problem(req, 503, "the challenge store is unavailable");
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct slc_config *cfg = NULL;
        if (slc_config_parse(list[i].config, strlen(list[i].config), &req->srv->limits, &cfg, msg,
                             sizeof msg) != 0) {
            continue;
        }
        json_t *d = describe(&list[i], cfg, req->auth.who == WHO_ADMIN);
        slc_config_free(cfg);
        if (d) {
            json_array_append_new(arr, d);
        }
    }
    store_challenge_free(list, n);
    return reply_json(req, 200, json_pack("{s:o}", "challenges", arr));
}

enum MHD_Result chal_h_get(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_ANYONE, &ret)) {
        return ret;
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    int st = load_challenge(req->srv->chal, req->params[0], &req->srv->limits, &c, &cfg, buf,
                            sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    json_t *d = describe(&c, cfg, req->auth.who == WHO_ADMIN);
    slc_config_free(cfg);
    store_challenge_clear(&c);
    return reply_json(req, 200, d);
}

/* Whether the spec, ranking or split of a and b differ (a re-score is due). */
static bool scoring_changed(const struct slc_config *a, const struct slc_config *b)
{
    json_t *ja = slc_config_json(a), *jb = slc_config_json(b);
    bool changed = !ja || !jb;
    static const char *const keys[] = {"spec", "ranking", "split"};
    for (size_t k = 0; !changed && k < 3; k++) {
        changed = !json_equal(json_object_get(ja, keys[k]), json_object_get(jb, keys[k]));
    }
    json_decref(ja);
    json_decref(jb);
    return changed;
}

/* The ids (sorted) of a reference manifest (JSON text), as a new array of n borrowed from *doc. */
static const char **manifest_ids(const char *manifest, json_t **doc, size_t *n)
{
    *doc = json_loads(manifest, 0, NULL);
    json_t *imgs = json_object_get(*doc, "images");
    *n = json_array_size(imgs);
    const char **ids = calloc(*n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < *n; i++) {
        ids[i] = json_string_value(json_object_get(json_array_get(imgs, i), "id"));
    }
    return ids;
}

void chal_c_config(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    const char *name = req->params[0];
    char msg[512];
    struct slc_config *cfg = NULL;
    int rc = slc_config_parse(body, len, &req->srv->limits, &cfg, msg, sizeof msg);
    if (rc) {
        slp_problem(slp_http_status(rc), msg, resp);
        return;
    }
    struct store_challenge old;
    struct slc_config *oldcfg = NULL;
    char buf[400];
    int st = load_challenge(cs, name, &req->srv->limits, &old, &oldcfg, buf, sizeof buf);
    if (st && st != 404) {
        slc_config_free(cfg);
        slp_problem(st, buf, resp);
        return;
    }
    bool exists = st == 0;
    char *public_ids = NULL;
    if (exists && old.reference) {
        json_t *doc;
        size_t n;
        const char **ids = manifest_ids(old.reference, &doc, &n);
        json_t *pub = ids ? chal_public_ids(cfg, ids, n, &rc, msg, sizeof msg) : NULL;
        public_ids = pub ? json_dumps(pub, JSON_COMPACT) : NULL;
        json_decref(pub);
        free(ids);
        json_decref(doc);
        if (!public_ids) {
            slp_problem(rc == SL_EINVAL ? 422 : 503, rc == SL_EINVAL ? msg : "out of memory", resp);
            goto out;
        }
    }
    bool rescore = exists && old.reference && scoring_changed(cfg, oldcfg);
    json_t *norm = slc_config_json(cfg);
    char *text = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
    json_decref(norm);
    bool created = false;
    int64_t version = 0;
    rc = text ? store_challenge_put(cs->store, name, text, public_ids, rescore, now_us(), &created,
                                    &version, msg, sizeof msg)
              : SL_ENOMEM;
    free(text);
    if (rc) {
        log_store("challenge put", msg);
        slp_problem(503, "the challenge store is unavailable", resp);
        goto out;
    }
    if (rescore) {
        chal_rescore_kick(cs);
    }
    struct store_challenge now;
    struct slc_config *nowcfg = NULL;
    st = load_challenge(cs, name, &req->srv->limits, &now, &nowcfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        goto out;
    }
    resp_json(resp, created ? 201 : 200, describe(&now, nowcfg, true));
    slc_config_free(nowcfg);
    store_challenge_clear(&now);
out:
    free(public_ids);
    slc_config_free(cfg);
    slc_config_free(oldcfg);
    if (exists) {
        store_challenge_clear(&old);
    }
}

/* The most bytes the bundle of imgs takes (proto/challenge.h's layout; a .npy header is at
 * most a few hundred bytes): the cap of the buffer it is written into. */
static size_t bundle_cap(const struct slc_images *imgs)
{
    size_t cap = 4096;
    for (size_t i = 0; imgs && i < imgs->n; i++) {
        const struct sl_tensor *t = &imgs->items[i].a.t;
        cap += (size_t)sl_tensor_numel(t) * sl_dtype_size(t->dtype) + SLC_ID_MAX + 1024;
    }
    return cap;
}

/* ---- the reference ------------------------------------------------------------------------ */

/* The reference's manifest {"images": [{"id", "shape", "dtype"}], "bytes"}: a new object. */
static json_t *manifest_json(const struct slc_images *imgs, size_t bytes)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < imgs->n; i++) {
        const struct sl_tensor *t = &imgs->items[i].a.t;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) {
            json_array_append_new(shape, json_integer(t->shape[d]));
        }
        json_array_append_new(arr, json_pack("{s:s, s:o, s:s}", "id", imgs->items[i].id, "shape",
                                             shape, "dtype", sl_dtype_name(t->dtype)));
    }
    return json_pack("{s:o, s:I}", "images", arr, "bytes", (json_int_t)bytes);
}

/* Sorts images by id (the bundle's order). */
static int cmp_image(const void *a, const void *b)
{
    return strcmp(((const struct slc_image *)a)->id, ((const struct slc_image *)b)->id);
}

/* PUT .../reference with its images parsed (rc, msg: the parse's result). */
static void put_reference(struct srv_req *req, int rc, char *msg, size_t msglen,
                          struct slc_images *imgs, struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    const char *name = req->params[0];
    struct store_challenge c;
    struct slc_config *cfg = NULL;
    char buf[400];
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, bundle_cap(imgs));
    if (rc) {
        slp_problem(slp_http_status(rc), msg, resp);
        slc_images_free(imgs);
        return;
    }
    int st = load_challenge(cs, name, &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        slc_images_free(imgs);
        return;
    }
    qsort(imgs->items, imgs->n, sizeof *imgs->items, cmp_image);
    rc = chal_check_reference(cfg, imgs, msg, msglen);
    const char **ids = calloc(imgs->n + 1, sizeof *ids);
    json_t *pub = NULL;
    char *pub_text = NULL, *man_text = NULL;
    char sha[STORE_SHA_HEX];
    if (rc == 0 && !ids) {
        rc = SL_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < imgs->n; i++) {
        ids[i] = imgs->items[i].id;
    }
    if (rc == 0) {
        pub = chal_public_ids(cfg, ids, imgs->n, &rc, msg, msglen);
    }
    if (rc == 0 && slc_bundle_write(imgs, &b) != 0) {
        rc = SL_ENOMEM;
    }
    if (rc) {
        slp_problem(rc == SL_ENOMEM ? 503 : slp_http_status(rc),
                    rc == SL_ENOMEM ? "out of memory" : msg, resp);
        goto out;
    }
    char smsg[256];
    rc = store_blob_put(cs->store, b.data, b.len, sha, smsg, sizeof smsg);
    json_t *man = manifest_json(imgs, b.len);
    man_text = man ? json_dumps(man, JSON_COMPACT) : NULL;
    json_decref(man);
    pub_text = pub ? json_dumps(pub, JSON_COMPACT) : NULL;
    bool created = false;
    bool changed = strcmp(c.ref_sha, sha) != 0;
    if (rc == 0) {
        rc = man_text && pub_text ? store_reference_put(cs->store, name, sha, man_text, pub_text,
                                                        changed || c.public_ids == NULL ||
                                                            strcmp(c.public_ids, pub_text) != 0,
                                                        now_us(), &created, smsg, sizeof smsg)
                                  : SL_ENOMEM;
    }
    if (rc) {
        log_store("reference put", smsg);
        slp_problem(503, "the challenge store could not keep the reference", resp);
        goto out;
    }
    chal_rescore_kick(cs);
    size_t npub = json_array_size(pub);
    resp_json(resp, created ? 201 : 200,
              json_pack("{s:I, s:I, s:I, s:I, s:s}", "images", (json_int_t)imgs->n, "public",
                        (json_int_t)npub, "private", (json_int_t)(imgs->n - npub), "bytes",
                        (json_int_t)b.len, "sha256", sha));
out:
    free(ids);
    free(pub_text);
    free(man_text);
    json_decref(pub);
    slp_dynbuf_free(&b);
    slc_images_free(imgs);
    slc_config_free(cfg);
    store_challenge_clear(&c);
}

void chal_c_reference(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    char msg[512] = "";
    struct slc_images *imgs = NULL;
    int rc =
        slc_images_from_json(body, len, SLC_REFERENCE, &req->srv->limits, &imgs, msg, sizeof msg);
    put_reference(req, rc, msg, sizeof msg, imgs, resp);
}

void chal_p_reference(struct srv_req *req, const struct slp_parts *parts, struct slp_response *resp)
{
    char msg[512] = "";
    struct slc_images *imgs = NULL;
    int rc = slc_images_from_parts(parts, SLC_REFERENCE, &req->srv->limits, &imgs, msg, sizeof msg);
    put_reference(req, rc, msg, sizeof msg, imgs, resp);
}

/* ---- participants ----------------------------------------------------------------------- */

void chal_c_participant(struct srv_req *req, const char *body, size_t len,
                        struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    const char *c = req->params[0];
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!j) {
        resp_problem(resp, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                     jerr.text);
        return;
    }
    if (!json_is_object(j) || json_object_size(j) != 1 || !name) {
        json_decref(j);
        resp_problem(resp, 422, "the body is {\"name\": NAME} and nothing else");
        return;
    }
    if (!chal_participant_ok(name)) {
        resp_problem(resp, 422,
                     "name: '%.64s' is not a participant name: [A-Za-z0-9._-]{1,64} (letters, "
                     "digits, '.', '_' and '-')",
                     name);
        json_decref(j);
        return;
    }
    unsigned char raw[32], hash[32];
    char token[65];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        json_decref(j);
        resp_problem(resp, 503, "no random bytes for a token (getrandom failed)");
        return;
    }
    slp_hex(raw, sizeof raw, token);
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, token, 64);
    slp_sha256_final(&s, hash);
    struct store_participant p;
    char msg[256];
    int rc = store_participant_add(cs->store, c, name, hash, now_us(), &p, msg, sizeof msg);
    if (rc == STORE_ECONFLICT) {
        resp_problem(resp, 409, "name: participant '%s' already exists in challenge '%s'", name, c);
    } else if (rc == STORE_ENOTFOUND) {
        resp_problem(resp, 404, "no challenge '%s'", c);
    } else if (rc) {
        log_store("participant add", msg);
        resp_problem(resp, 503, "the challenge store is unavailable");
    } else {
        char at[40];
        chal_time_format(p.created_at, at, sizeof at);
        resp_json(resp, 201,
                  json_pack("{s:s, s:s, s:s, s:s}", "name", name, "token", token, "challenge", c,
                            "created_at", at));
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(raw, sizeof raw);
    json_decref(j);
}

enum MHD_Result chal_h_participants(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_ADMIN, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    slc_config_free(cfg);
    store_challenge_clear(&c);
    struct store_participant *ps = NULL;
    size_t n = 0;
    if (store_participant_list(cs->store, req->params[0], &ps, &n, msg, sizeof msg) != 0) {
        log_store("participant list", msg);
        return reply_problem(req, 503, "the challenge store is unavailable");
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char at[40];
        chal_time_format(ps[i].created_at, at, sizeof at);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:b}", "name", ps[i].name,
                                             "created_at", at, "submissions",
                                             (json_int_t)ps[i].submissions, "scored",
                                             (json_int_t)ps[i].scored, "revoked", ps[i].revoked));
    }
    free(ps);
    return reply_json(req, 200, json_pack("{s:o}", "participants", arr));
}

enum MHD_Result chal_h_revoke(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_ADMIN, &ret)) {
        return ret;
    }
    char msg[256];
    int rc = store_participant_revoke(req->srv->chal->store, req->params[0], req->params[1],
                                      now_us(), msg, sizeof msg);
    if (rc == STORE_ENOTFOUND) {
        return reply_problem(req, 404, "no participant '%s' in challenge '%s' (or already revoked)",
                             req->params[1], req->params[0]);
    }
    if (rc) {
        log_store("participant revoke", msg);
        return reply_problem(req, 503, "the challenge store is unavailable");
    }
    return srv_reply_hdrs(req, 204, "application/json", (void *)"", 0, false, NULL);
}

/* ---- leaderboards ------------------------------------------------------------------------- */

/* The values of keys (n) in a values object text (NULL: all NaN) into out. The text is a flat
 * object {key: number or null} as chal_score.c writes it (json_dumps, compact): each key is
 * found as its JSON string followed by ':' (jansson writes keys as these needles escape them),
 * which takes no parse and no allocation - a leaderboard reads 20,000 of them. */
static void values_of(const char *text, char needles[][SLC_VALUE_KEY_MAX * 2 + 4], int n,
                      double *out)
{
    for (int k = 0; k < n; k++) {
        const char *at = text ? strstr(text, needles[k]) : NULL;
        out[k] = NAN;
        if (at) {
            char *end;
            double v = strtod(at + strlen(needles[k]), &end);
            if (end != at + strlen(needles[k])) {
                out[k] = v;
            }
        }
    }
}

/* The needle of values_of for each key: "\"key\":" (the key JSON-escaped). */
static void key_needles(const struct slc_key *keys, int n,
                        char needles[][SLC_VALUE_KEY_MAX * 2 + 4])
{
    for (int k = 0; k < n; k++) {
        json_t *j = json_string(keys[k].key);
        char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        snprintf(needles[k], sizeof needles[k], "%s:", q ? q : "\"\"");
        free(q);
        json_decref(j);
    }
}

/* One leaderboard: the rows shown, ranked. */
struct board {
    struct store_sub *subs; /* the rankable submissions (owned) */
    size_t nsubs;
    double *vals;          /* nsubs x nranking, split's ranking values */
    struct chal_row *rows; /* shown rows, ranked; rows[i].seq indexes subs via sub_of */
    size_t nrows;
    size_t *sub_of;   /* rows[i] -> index into subs */
    int64_t *entries; /* per row: its participant's scored submissions */
};

static void board_free(struct board *b)
{
    store_sub_free(b->subs, b->nsubs);
    free(b->vals);
    free(b->rows);
    free(b->sub_of);
    free(b->entries);
    memset(b, 0, sizeof *b);
}

/* The order of cfg's ranking. */
static void order_of(const struct slc_config *cfg, struct chal_order *o)
{
    o->nkeys = cfg->nranking;
    for (int k = 0; k < cfg->nranking; k++) {
        o->desc[k] = cfg->ranking[k].desc;
    }
}

/* Fills a row for submission i of b under split s. */
static struct chal_row row_of(struct board *b, size_t i, int nkeys)
{
    struct chal_row r = {b->vals + i * (size_t)nkeys, b->subs[i].received_at, (int64_t)i,
                         b->subs[i].participant, 0};
    return r;
}

/* Orders submission indices by participant, then index (qsort's context-free comparison
 * reads the participant ids through a pointer pair). */
struct by_part {
    int64_t participant;
    size_t i;
};
static int cmp_by_part(const void *a, const void *b)
{
    const struct by_part *x = a, *y = b;
    if (x->participant != y->participant) {
        return x->participant < y->participant ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Builds the leaderboard of split s (0 public, 1 private) of challenge c: O(n log n) in the
 * rankable submissions n. */
static int board_build(struct chal_server *cs, const char *c, const struct slc_config *cfg, int s,
                       struct board *b, char *msg, size_t msglen)
{
    memset(b, 0, sizeof *b);
    int rc = store_ranked_subs(cs->store, c, &b->subs, &b->nsubs, msg, msglen);
    if (rc) {
        return rc;
    }
    const int nk = cfg->nranking;
    size_t n = b->nsubs;
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->ranking, nk, needles);
    b->vals = calloc(n * (size_t)nk * 2 + 1, sizeof *b->vals);
    b->rows = calloc(n + 1, sizeof *b->rows);
    b->sub_of = calloc(n + 1, sizeof *b->sub_of);
    b->entries = calloc(n + 1, sizeof *b->entries);
    struct by_part *order = calloc(n + 1, sizeof *order);
    struct chal_row *pub = calloc(n + 1, sizeof *pub), *priv = calloc(n + 1, sizeof *priv);
    bool *fin = calloc(n + 1, sizeof *fin);
    if (!b->vals || !b->rows || !b->sub_of || !b->entries || !order || !pub || !priv || !fin) {
        rc = SL_ENOMEM;
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    /* vals: the public values first (n x nk), then the private ones */
    for (size_t i = 0; i < n; i++) {
        values_of(b->subs[i].pub_values, needles, nk, b->vals + i * (size_t)nk);
        if (s == 1) {
            values_of(b->subs[i].priv_values, needles, nk, b->vals + (n + i) * (size_t)nk);
        }
        order[i] = (struct by_part){b->subs[i].participant, i};
    }
    qsort(order, n, sizeof *order, cmp_by_part);
    struct chal_order o;
    order_of(cfg, &o);
    /* one group of order per participant: [g, e) */
    for (size_t g = 0, e; g < n; g = e) {
        for (e = g; e < n && order[e].participant == order[g].participant; e++) {
        }
        size_t m = e - g;
        for (size_t k = 0; k < m; k++) {
            size_t i = order[g + k].i;
            pub[k] = row_of(b, i, nk);
            priv[k] = pub[k];
            priv[k].vals = b->vals + (n + i) * (size_t)nk;
            fin[k] = b->subs[i].final_;
        }
        long pick;
        if (s == 0) {
            pick = (long)chal_keep_per_participant(pub, m, &o, cfg->keep_latest) > 0 ? 0 : -1;
        } else {
            pick = chal_private_choice(pub, priv, fin, m, (int)cfg->final_selections, &o, &o);
        }
        if (pick >= 0) {
            b->rows[b->nrows++] = s == 0 ? pub[pick] : priv[pick];
        }
    }
    /* entries follow their row through the ranking: kept by participant id */
    chal_rank(b->rows, b->nrows, &o);
    for (size_t r = 0; r < b->nrows; r++) {
        b->sub_of[r] = (size_t)b->rows[r].seq;
    }
    {
        /* the participant's scored submissions: the size of its group in order */
        for (size_t r = 0; r < b->nrows; r++) {
            struct by_part key = {b->rows[r].participant, 0};
            struct by_part *lo = order, *hi = order + n;
            while (lo < hi) {
                struct by_part *mid = lo + (hi - lo) / 2;
                if (cmp_by_part(mid, &key) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            size_t e = (size_t)(lo - order);
            while (e < n && order[e].participant == key.participant) {
                e++;
            }
            b->entries[r] = (int64_t)(e - (size_t)(lo - order));
        }
    }
out:
    free(order);
    free(pub);
    free(priv);
    free(fin);
    if (rc) {
        board_free(b);
    }
    return rc;
}

/* Appends a CSV cell (quoted when needed) to d. */
static void csv_cell(struct slp_dynbuf *d, const char *s, bool first)
{
    if (!first) {
        slp_dynbuf_add(d, ",", 1);
    }
    if (!strpbrk(s, ",\"\r\n")) {
        slp_dynbuf_adds(d, s);
        return;
    }
    slp_dynbuf_add(d, "\"", 1);
    for (const char *p = s; *p; p++) {
        slp_dynbuf_add(d, p, 1);
        if (*p == '"') {
            slp_dynbuf_add(d, "\"", 1);
        }
    }
    slp_dynbuf_add(d, "\"", 1);
}

/* Appends a number cell ("" for null). */
static void csv_num(struct slp_dynbuf *d, const json_t *x)
{
    slp_dynbuf_add(d, ",", 1);
    if (json_is_number(x)) {
        slp__write_num(d, json_number_value(x));
    }
}

/* The scores object {column: value} of a values text. */
static json_t *scores_json(const char *values, const struct slc_config *cfg)
{
    json_t *v = values ? json_loads(values, 0, NULL) : NULL;
    json_t *o = json_object();
    for (int k = 0; k < cfg->ncolumns; k++) {
        json_t *x = json_object_get(v, cfg->columns[k].key);
        json_object_set_new(o, cfg->columns[k].key,
                            json_is_number(x) ? json_real(json_number_value(x)) : json_null());
    }
    json_decref(v);
    return o;
}

/* Board b (built, borrowed) of split s of challenge c as CSV or JSON text (a new string in *out
 * of *len bytes). Returns 0 or SL_ENOMEM with msg. */
static int board_text(const struct board *bp, const struct store_challenge *c,
                      const struct slc_config *cfg, int s, bool csv, char **out, size_t *len,
                      char *msg, size_t msglen)
{
    const struct board b = *bp;
    *out = NULL;
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->columns, cfg->ncolumns, needles);
    double vals[SLC_MAX_KEYS];
    if (csv) {
        struct slp_dynbuf d;
        slp_dynbuf_init(&d, SLP_ANSWER_MAX);
        slp_dynbuf_adds(&d, "rank,participant,submission,submitted_at");
        for (int k = 0; k < cfg->ncolumns; k++) {
            csv_cell(&d, cfg->columns[k].key, false);
        }
        slp_dynbuf_adds(&d, "\r\n");
        for (size_t r = 0; r < b.nrows; r++) {
            const struct store_sub *sub = &b.subs[b.sub_of[r]];
            char at[40];
            chal_time_format(sub->received_at, at, sizeof at);
            slp__write_int(&d, b.rows[r].rank);
            csv_cell(&d, sub->participant_name, false);
            csv_cell(&d, sub->id, false);
            csv_cell(&d, at, false);
            values_of(s == 0 ? sub->pub_values : sub->priv_values, needles, cfg->ncolumns, vals);
            for (int k = 0; k < cfg->ncolumns; k++) {
                slp_dynbuf_add(&d, ",", 1);
                if (!isnan(vals[k])) {
                    slp__write_num(&d, vals[k]);
                }
            }
            slp_dynbuf_adds(&d, "\r\n");
        }
        *out = d.err ? NULL : slp_dynbuf_take(&d, len);
        slp_dynbuf_free(&d);
    } else {
        json_t *rows = json_array();
        for (size_t r = 0; r < b.nrows; r++) {
            const struct store_sub *sub = &b.subs[b.sub_of[r]];
            char at[40];
            chal_time_format(sub->received_at, at, sizeof at);
            values_of(s == 0 ? sub->pub_values : sub->priv_values, needles, cfg->ncolumns, vals);
            json_t *scores = json_object();
            for (int k = 0; k < cfg->ncolumns; k++) {
                json_object_set_new(scores, cfg->columns[k].key,
                                    isnan(vals[k]) ? json_null() : json_real(vals[k]));
            }
            json_array_append_new(rows, json_pack("{s:I, s:s, s:s, s:s, s:o, s:I, s:s, s:b}",
                                                  "rank", (json_int_t)b.rows[r].rank, "participant",
                                                  sub->participant_name, "submission", sub->id,
                                                  "submitted_at", at, "scores", scores, "entries",
                                                  (json_int_t)b.entries[r], "note",
                                                  sub->note ? sub->note : "", "stale", sub->stale));
        }
        json_t *doc =
            json_pack("{s:s, s:s, s:I, s:o, s:o}", "challenge", c->name, "split",
                      s == 0 ? "public" : "private", "version", (json_int_t)c->version, "columns",
                      keys_json(cfg->columns, cfg->ncolumns, cfg), "rows", rows);
        *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        *len = *out ? strlen(*out) : 0;
        json_decref(doc);
    }
    if (!*out) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    return 0;
}

/* A copy of the cached leaderboard (challenge, split s, csv) made under store generation gen,
 * or NULL when there is none. The copy is the caller's (*len bytes). */
static char *board_cached(struct chal_server *cs, const char *challenge, int s, bool csv,
                          uint64_t gen, size_t *len)
{
    char *copy = NULL;
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        struct chal_board *e = &cs->boards[i];
        if (e->text && e->gen == gen && e->split == s && e->csv == csv &&
            strcmp(e->challenge, challenge) == 0) {
            copy = malloc(e->len + 1);
            if (copy) {
                memcpy(copy, e->text, e->len + 1);
                *len = e->len;
            }
            break;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return copy;
}

/* Keeps a copy of text (len bytes, the leaderboard made under generation gen), replacing the
 * entry of the same board or the oldest. */
static void board_cache_put(struct chal_server *cs, const char *challenge, int s, bool csv,
                            uint64_t gen, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        return;
    }
    memcpy(copy, text, len + 1);
    pthread_mutex_lock(&cs->mu);
    int at = cs->next_board;
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        struct chal_board *e = &cs->boards[i];
        if (e->text && e->split == s && e->csv == csv && strcmp(e->challenge, challenge) == 0) {
            at = i;
            break;
        }
    }
    if (at == cs->next_board) {
        cs->next_board = (cs->next_board + 1) % CHAL_BOARD_CACHE;
    }
    struct chal_board *e = &cs->boards[at];
    free(e->text);
    snprintf(e->challenge, sizeof e->challenge, "%s", challenge);
    e->split = s;
    e->csv = csv;
    e->gen = gen;
    e->text = copy;
    e->len = len;
    pthread_mutex_unlock(&cs->mu);
}

enum MHD_Result chal_h_leaderboard(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_ANYONE, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    const char *split = query(req, "split");
    const char *format = query(req, "format");
    int s = !split || strcmp(split, "public") == 0 ? 0 : strcmp(split, "private") == 0 ? 1 : -1;
    if (s < 0) {
        return reply_problem(req, 422, "split: '%.40s' is not public or private", split);
    }
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        return reply_problem(req, 422, "format: '%.40s' is not json or csv", format);
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    if (s == 1 && !cfg->private_visible && req->auth.who != WHO_ADMIN) {
        slc_config_free(cfg);
        store_challenge_clear(&c);
        return reply_problem(req, req->auth.who == WHO_ANON ? 401 : 403,
                             "the private leaderboard is the organiser's until the reveal "
                             "(private_visible)");
    }
    bool csv = format && strcmp(format, "csv") == 0;
    size_t len = 0;
    uint64_t gen = store_generation(cs->store);
    char *text = board_cached(cs, c.name, s, csv, gen, &len);
    if (!text) {
        struct board b;
        int rc = board_build(cs, c.name, cfg, s, &b, msg, sizeof msg);
        if (rc == 0) {
            rc = board_text(&b, &c, cfg, s, csv, &text, &len, msg, sizeof msg);
            board_free(&b);
        }
        if (rc == 0) {
            board_cache_put(cs, c.name, s, csv, gen, text, len);
        } else if (rc != SL_ENOMEM) {
            log_store("leaderboard", msg);
        }
    }
    slc_config_free(cfg);
    store_challenge_clear(&c);
    if (!text) {
        return reply_problem(req, 503, "the leaderboard could not be made (store or memory)");
    }
    return srv_reply_hdrs(req, 200, csv ? "text/csv; charset=utf-8" : "application/json", text, len,
                          true, NULL);
}

/* Compares the ranking values a and b under o: negative when a is better, 0 when equal
 * (nulls equal each other and rank below every number). */
static int keys_cmp(const double *a, const double *b, const struct chal_order *o)
{
    for (int k = 0; k < o->nkeys; k++) {
        bool na = isnan(a[k]), nb = isnan(b[k]);
        if (na || nb) {
            if (na != nb) {
                return na ? 1 : -1;
            }
            continue;
        }
        if (a[k] != b[k]) {
            bool a_better = o->desc[k] ? a[k] > b[k] : a[k] < b[k];
            return a_better ? -1 : 1;
        }
    }
    return 0;
}

/* The public rank a submission with values of participant pid holds on public board b: 1 + the
 * other participants' shown rows that are better on the ranking keys (equal ones share it). */
static int64_t public_rank(const struct board *b, const struct slc_config *cfg, const char *values,
                           int64_t pid)
{
    double mine[SLC_MAX_KEYS];
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->ranking, cfg->nranking, needles);
    values_of(values, needles, cfg->nranking, mine);
    struct chal_order o;
    order_of(cfg, &o);
    int64_t rank = 1;
    for (size_t r = 0; r < b->nrows; r++) {
        if (b->rows[r].participant != pid && keys_cmp(b->rows[r].vals, mine, &o) < 0) {
            rank++;
        }
    }
    return rank;
}

/* ---- submissions ------------------------------------------------------------------------ */

static const char *const status_names[] = {"scoring", "scored", "failed"};

/* One submission as the API shows it to who (admin: everything). A new object. */
static json_t *sub_json(const struct store_sub *sub, const struct slc_config *cfg, bool admin)
{
    char at[40];
    chal_time_format(sub->received_at, at, sizeof at);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:b}", "id", sub->id, "participant",
                  sub->participant_name, "received_at", at, "sha256", sub->body_sha, "bytes",
                  (json_int_t)sub->bytes, "status", status_names[sub->status], "note",
                  sub->note ? sub->note : "", "final", sub->final_, "stale", sub->stale);
    if (!j) {
        return NULL;
    }
    if (sub->status == STORE_SCORED) {
        json_object_set_new(j, "public", scores_json(sub->pub_values, cfg));
        if (admin || cfg->private_visible) {
            json_object_set_new(j, "private", scores_json(sub->priv_values, cfg));
        }
    }
    if (sub->error) {
        json_object_set_new(j, "error", json_string(sub->error));
    }
    if (sub->disqualified || admin) {
        json_object_set_new(j, "disqualified", json_boolean(sub->disqualified));
    }
    if (admin) {
        json_object_set_new(j, "disqualified_reason",
                            sub->dq_reason ? json_string(sub->dq_reason) : json_null());
        json_object_set_new(j, "config_version", json_integer(sub->config_version));
        json_object_set_new(j, "reference_sha256", json_string(sub->ref_sha));
        json_object_set_new(j, "server_version", json_string(sub->server_version));
        json_t *v = json_object();
        json_object_set_new(v, "public",
                            sub->pub_values ? json_loads(sub->pub_values, 0, NULL) : json_null());
        json_object_set_new(v, "private",
                            sub->priv_values ? json_loads(sub->priv_values, 0, NULL) : json_null());
        json_object_set_new(j, "values", v);
        if (sub->pub_full || sub->priv_full) {
            json_t *f = json_object();
            json_object_set_new(f, "public",
                                sub->pub_full ? json_loads(sub->pub_full, 0, NULL) : json_null());
            json_object_set_new(f, "private",
                                sub->priv_full ? json_loads(sub->priv_full, 0, NULL) : json_null());
            json_object_set_new(j, "per_image", f);
        }
    }
    return j;
}

/* Compares two C strings for qsort. */
static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The admin's CSV export of every submission with all scores of both splits. */
static enum MHD_Result export_csv(struct srv_req *req, struct store_sub *subs, size_t n)
{
    /* the value keys: the union over the submissions, sorted */
    json_t *keys = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *texts[2] = {subs[i].pub_values, subs[i].priv_values};
        for (int s = 0; s < 2; s++) {
            json_t *v = texts[s] ? json_loads(texts[s], 0, NULL) : NULL;
            const char *k;
            json_t *x;
            json_object_foreach(v, k, x)
            {
                json_object_set_new(keys, k, json_true());
            }
            json_decref(v);
        }
    }
    size_t nk = json_object_size(keys);
    const char **names = calloc(nk + 1, sizeof *names);
    size_t at = 0;
    const char *k;
    json_t *x;
    json_object_foreach(keys, k, x)
    {
        names[at++] = k;
    }
    if (names) {
        qsort(names, nk, sizeof *names, cmp_cstr);
    }
    struct slp_dynbuf d;
    slp_dynbuf_init(&d, SLP_ANSWER_MAX);
    slp_dynbuf_adds(&d, "id,participant,received_at,status,error,sha256,bytes,config_version,"
                        "reference_sha256,server_version,stale,final,disqualified,"
                        "disqualified_reason,note");
    for (int s = 0; s < 2 && names; s++) {
        for (size_t i = 0; i < nk; i++) {
            char col[SLC_VALUE_KEY_MAX + 16];
            snprintf(col, sizeof col, "%s.%s", s == 0 ? "public" : "private", names[i]);
            csv_cell(&d, col, false);
        }
    }
    slp_dynbuf_adds(&d, "\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct store_sub *sub = &subs[i];
        char t[40];
        chal_time_format(sub->received_at, t, sizeof t);
        csv_cell(&d, sub->id, true);
        csv_cell(&d, sub->participant_name, false);
        csv_cell(&d, t, false);
        csv_cell(&d, status_names[sub->status], false);
        csv_cell(&d, sub->error ? sub->error : "", false);
        csv_cell(&d, sub->body_sha, false);
        slp_dynbuf_add(&d, ",", 1);
        slp__write_int(&d, sub->bytes);
        slp_dynbuf_add(&d, ",", 1);
        slp__write_int(&d, sub->config_version);
        csv_cell(&d, sub->ref_sha, false);
        csv_cell(&d, sub->server_version, false);
        csv_cell(&d, sub->stale ? "true" : "false", false);
        csv_cell(&d, sub->final_ ? "true" : "false", false);
        csv_cell(&d, sub->disqualified ? "true" : "false", false);
        csv_cell(&d, sub->dq_reason ? sub->dq_reason : "", false);
        csv_cell(&d, sub->note ? sub->note : "", false);
        const char *texts[2] = {sub->pub_values, sub->priv_values};
        for (int s = 0; s < 2 && names; s++) {
            json_t *v = texts[s] ? json_loads(texts[s], 0, NULL) : NULL;
            for (size_t c = 0; c < nk; c++) {
                csv_num(&d, json_object_get(v, names[c]));
            }
            json_decref(v);
        }
        slp_dynbuf_adds(&d, "\r\n");
    }
    free(names);
    json_decref(keys);
    size_t len = 0;
    char *text = d.err ? NULL : slp_dynbuf_take(&d, &len);
    slp_dynbuf_free(&d);
    if (!text) {
        return reply_problem(req, 503, "out of memory writing the export");
    }
    return srv_reply_hdrs(req, 200, "text/csv; charset=utf-8", text, len, true, NULL);
}

enum MHD_Result chal_h_submissions(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_PARTICIPANT_OR_ADMIN, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    bool admin = req->auth.who == WHO_ADMIN;
    const char *format = query(req, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        return reply_problem(req, 422, "format: '%.40s' is not json or csv", format);
    }
    bool csv = format && strcmp(format, "csv") == 0;
    if (csv && !admin) {
        return reply_problem(req, 403, "the CSV export is the organiser's");
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    store_challenge_clear(&c);
    struct store_sub *subs = NULL;
    size_t n = 0;
    if (store_sub_list(cs->store, req->params[0], admin ? -1 : req->auth.pid, admin && !csv, &subs,
                       &n, msg, sizeof msg) != 0) {
        slc_config_free(cfg);
        log_store("submission list", msg);
        return reply_problem(req, 503, "the challenge store is unavailable");
    }
    if (csv) {
        ret = export_csv(req, subs, n);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, sub_json(&subs[i], cfg, admin));
        }
        ret = reply_json(req, 200, json_pack("{s:o}", "submissions", arr));
    }
    store_sub_free(subs, n);
    slc_config_free(cfg);
    return ret;
}

/* Loads submission id of the route for who may see it (a participant: its own). Returns 0 or
 * a status with buf. */
static int load_sub(struct srv_req *req, bool full, struct store_sub *sub, char *buf, size_t n)
{
    char msg[256];
    int rc = store_sub_get(req->srv->chal->store, req->params[0], req->params[1], full, sub, msg,
                           sizeof msg);
    if (rc == STORE_ENOTFOUND ||
        (rc == 0 && req->auth.who != WHO_ADMIN && sub->participant != req->auth.pid)) {
        if (rc == 0) {
            store_sub_clear(sub);
        }
        /* another participant's submission is not found, not forbidden: ids tell nothing */
        snprintf(buf, n, "no submission '%s' of yours in challenge '%s'", req->params[1],
                 req->params[0]);
        return 404;
    }
    if (rc) {
        log_store("submission get", msg);
        snprintf(buf, n, "the challenge store is unavailable");
        return 503;
    }
    return 0;
}

enum MHD_Result chal_h_submission(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_PARTICIPANT_OR_ADMIN, &ret)) {
        return ret;
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    int st = load_challenge(req->srv->chal, req->params[0], &req->srv->limits, &c, &cfg, buf,
                            sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    store_challenge_clear(&c);
    struct store_sub sub;
    bool admin = req->auth.who == WHO_ADMIN;
    st = load_sub(req, admin, &sub, buf, sizeof buf);
    if (st) {
        slc_config_free(cfg);
        return reply_problem(req, st, "%s", buf);
    }
    json_t *j = sub_json(&sub, cfg, admin);
    store_sub_clear(&sub);
    slc_config_free(cfg);
    return reply_json(req, 200, j);
}

enum MHD_Result chal_h_final(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_PARTICIPANT, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    store_challenge_clear(&c);
    bool on = req->method_bit == SRV_PUT;
    int rc = store_sub_set_final(cs->store, req->params[0], req->params[1], req->auth.pid, on,
                                 cfg->final_selections, msg, sizeof msg);
    int64_t max = cfg->final_selections;
    slc_config_free(cfg);
    if (rc == STORE_ECONFLICT) {
        return reply_problem(req, 409,
                             "final: %lld submissions may be selected (final_selections); "
                             "unselect one first (DELETE .../submissions/{id}/final)",
                             (long long)max);
    }
    if (rc == STORE_ENOTFOUND) {
        return reply_problem(req, 404, "no submission '%s' of yours in challenge '%s'",
                             req->params[1], req->params[0]);
    }
    if (rc == SL_EINVAL) {
        return reply_problem(req, 409, "final: only a scored submission may be selected");
    }
    if (rc) {
        log_store("final", msg);
        return reply_problem(req, 503, "the challenge store is unavailable");
    }
    struct store_sub sub;
    st = load_sub(req, false, &sub, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    json_t *j = cfg ? sub_json(&sub, cfg, false) : NULL;
    store_sub_clear(&sub);
    slc_config_free(cfg);
    store_challenge_clear(&c);
    return reply_json(req, 200, j);
}

void chal_c_patch(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        resp_problem(resp, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                     jerr.text);
        return;
    }
    json_t *dq = json_object_get(j, "disqualified");
    json_t *reason = json_object_get(j, "reason");
    const char *k;
    json_t *x;
    json_object_foreach(j, k, x)
    {
        if (strcmp(k, "disqualified") != 0 && strcmp(k, "reason") != 0) {
            resp_problem(resp, 422,
                         "%.64s: unknown key; the body is {\"disqualified\": "
                         "true|false, \"reason\": TEXT}",
                         k);
            json_decref(j);
            return;
        }
    }
    if (!json_is_boolean(dq) || (reason && !json_is_string(reason) && !json_is_null(reason))) {
        resp_problem(resp, 422,
                     json_is_boolean(dq) ? "reason: must be a string"
                                         : "disqualified: required, true or false");
        json_decref(j);
        return;
    }
    char msg[256];
    int rc = store_sub_disqualify(cs->store, req->params[0], req->params[1], json_is_true(dq),
                                  json_string_value(reason), msg, sizeof msg);
    json_decref(j);
    if (rc == STORE_ENOTFOUND) {
        resp_problem(resp, 404, "no submission '%s' in challenge '%s'", req->params[1],
                     req->params[0]);
        return;
    }
    if (rc) {
        log_store("disqualify", msg);
        resp_problem(resp, 503, "the challenge store is unavailable");
        return;
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        return;
    }
    struct store_sub sub;
    if (store_sub_get(cs->store, req->params[0], req->params[1], false, &sub, msg, sizeof msg) ==
        0) {
        resp_json(resp, 200, sub_json(&sub, cfg, true));
        store_sub_clear(&sub);
    } else {
        resp_problem(resp, 503, "the challenge store is unavailable");
    }
    slc_config_free(cfg);
    store_challenge_clear(&c);
}

/* The 201 answer of a scored submission. */
static json_t *created_json(struct chal_server *cs, const struct store_challenge *c,
                            const struct slc_config *cfg, const struct store_sub *sub,
                            const struct chal_usage *after, chal_time now)
{
    json_t *j = sub_json(sub, cfg, false);
    if (!j) {
        return NULL;
    }
    json_object_del(j, "final");
    json_object_del(j, "stale");
    /* the public board is built once: for the rank, and kept rendered for the next reader of
     * the leaderboard, under the generation this submission's commit made */
    uint64_t gen = store_generation(cs->store);
    struct board b;
    char msg[256];
    int64_t rank = -1;
    if (board_build(cs, c->name, cfg, 0, &b, msg, sizeof msg) == 0) {
        rank = public_rank(&b, cfg, sub->pub_values, sub->participant);
        char *text = NULL;
        size_t len = 0;
        if (board_text(&b, c, cfg, 0, false, &text, &len, msg, sizeof msg) == 0) {
            board_cache_put(cs, c->name, 0, false, gen, text, len);
            free(text);
        }
        board_free(&b);
    }
    json_object_set_new(j, "public_rank", rank > 0 ? json_integer(rank) : json_null());
    struct chal_quota q = {cfg->per_day, cfg->total, cfg->concurrent};
    struct chal_quota_view v;
    chal_quota_view(&q, after, now, &v);
    json_t *quota = json_object();
    json_object_set_new(quota, "used_today", json_integer(v.used_today));
    json_object_set_new(quota, "per_day", v.per_day < 0 ? json_null() : json_integer(v.per_day));
    json_object_set_new(quota, "remaining_today",
                        v.remaining_today < 0 ? json_null() : json_integer(v.remaining_today));
    json_object_set_new(quota, "resets_at", time_json(v.resets_at));
    json_object_set_new(quota, "used_total", json_integer(v.used_total));
    json_object_set_new(quota, "total", v.total < 0 ? json_null() : json_integer(v.total));
    json_object_set_new(j, "quota", quota);
    return j;
}

/* POST .../submissions with the body's images parsed (prc, pmsg: the parse's result). The
 * admission came first (so a refused body is never parsed: see chal_c_submit). */
static void submit_scored(struct srv_req *req, const struct store_challenge *c,
                          const struct slc_config *cfg, const char *id, chal_time now,
                          const struct chal_usage *before, int prc, const char *pmsg,
                          struct slc_images *imgs, struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    char msg[512], smsg[256];
    snprintf(msg, sizeof msg, "%s", pmsg);
    struct chal_ref *ref = NULL;
    struct chal_scored sc = {0};
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, bundle_cap(imgs));
    int rc = prc;
    int status = rc ? slp_http_status(rc) : 0;
    if (rc == 0) {
        rc = chal_ref_get(cs, c, cfg, &req->srv->limits, &ref, msg, sizeof msg);
        status = rc ? 503 : 0;
    }
    if (rc == 0) {
        rc = chal_score(cfg, ref, imgs, &req->srv->limits, req->srv->pool, &sc, msg, sizeof msg);
        status = rc ? (rc == SL_ENOMEM ? 503 : 422) : 0;
    }
    char sha[STORE_SHA_HEX] = "";
    if (rc == 0) {
        qsort(imgs->items, imgs->n, sizeof *imgs->items, cmp_image);
        rc = slc_bundle_write(imgs, &b) != 0 ? SL_ENOMEM : 0;
        if (rc == 0) {
            rc = store_blob_put(cs->store, b.data, b.len, sha, smsg, sizeof smsg);
        }
        if (rc) {
            log_store("submission blob", smsg);
            snprintf(msg, sizeof msg, "the submission could not be stored");
            status = 503;
        }
    }
    struct store_scores s = {sha,          (int64_t)b.len,
                             sc.values[0], sc.values[1],
                             sc.full[0],   sc.full[1],
                             c->version,   c->ref_sha,
                             SL_VERSION,   imgs && imgs->note ? imgs->note : ""};
    int frc = store_sub_finish(cs->store, id, rc ? STORE_FAILED : STORE_SCORED, rc ? msg : NULL, &s,
                               smsg, sizeof smsg);
    pthread_mutex_lock(&cs->mu);
    cs->answered[rc || frc ? STORE_FAILED : STORE_SCORED]++;
    pthread_mutex_unlock(&cs->mu);
    if (frc) {
        log_store("submission finish", smsg);
        slp_problem(503, "the submission could not be stored", resp);
    } else if (rc) {
        slp_problem(status, msg, resp);
    } else {
        struct store_sub sub;
        if (store_sub_get(cs->store, c->name, id, false, &sub, smsg, sizeof smsg) == 0) {
            struct chal_usage after = *before;
            after.scored_today++;
            after.scored_total++;
            resp_json(resp, 201, created_json(cs, c, cfg, &sub, &after, now));
            store_sub_clear(&sub);
        } else {
            slp_problem(503, "the submission was stored but cannot be read back", resp);
        }
    }
    chal_ref_put(cs, ref);
    chal_scored_clear(&sc);
    slp_dynbuf_free(&b);
}

/* POST .../submissions: admission (window, quotas) first, then the body. */
static void submit(struct srv_req *req, const char *body, size_t len, const struct slp_parts *parts,
                   struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    const char *name = req->params[0];
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[512] = "", smsg[256];
    int st = load_challenge(cs, name, &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        return;
    }
    if (!c.ref_sha[0]) {
        resp_problem(resp, 409,
                     "challenge '%s' has no reference yet; submissions open once the "
                     "organiser has uploaded it",
                     name);
        goto out;
    }
    struct chal_quota q = {cfg->per_day, cfg->total, cfg->concurrent};
    enum chal_verdict v;
    struct chal_usage usage;
    int64_t retry = 0;
    char id[STORE_SUB_ID];
    chal_time now = now_us();
    int rc = store_sub_admit(cs->store, name, req->auth.pid, "", now, &q, cfg->opens_at,
                             cfg->closes_at, &v, &usage, &retry, id, smsg, sizeof smsg);
    if (rc) {
        log_store("submission admit", smsg);
        slp_problem(503, "the challenge store is unavailable", resp);
        goto out;
    }
    if (v != CHAL_ADMIT) {
        chal_verdict_detail(v, &q, &usage, now, cfg->opens_at, cfg->closes_at, buf, sizeof buf);
        slp_problem(v == CHAL_NOT_OPEN || v == CHAL_CLOSED ? 403 : 429, buf, resp);
        if (retry > 0) {
            snprintf(req->job.hdr_name, sizeof req->job.hdr_name, "Retry-After");
            snprintf(req->job.hdr_val, sizeof req->job.hdr_val, "%lld", (long long)retry);
        }
        goto out;
    }
    struct slc_images *imgs = NULL;
    if (parts) {
        rc =
            slc_images_from_parts(parts, SLC_SUBMISSION, &req->srv->limits, &imgs, msg, sizeof msg);
    } else {
        rc = slc_images_from_json(body, len, SLC_SUBMISSION, &req->srv->limits, &imgs, msg,
                                  sizeof msg);
    }
    submit_scored(req, &c, cfg, id, now, &usage, rc, msg, imgs, resp);
    slc_images_free(imgs);
out:
    slc_config_free(cfg);
    store_challenge_clear(&c);
}

void chal_c_submit(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    submit(req, body, len, NULL, resp);
}

void chal_p_submit(struct srv_req *req, const struct slp_parts *parts, struct slp_response *resp)
{
    submit(req, NULL, 0, parts, resp);
}

/* ---- re-scoring --------------------------------------------------------------------------- */

enum MHD_Result chal_h_rescore(struct srv_req *req)
{
    enum MHD_Result ret;
    if (gate_reply(req, true, NEED_ADMIN, &ret)) {
        return ret;
    }
    if (req->method_bit != SRV_GET && req->method_bit != SRV_HEAD && req->method_bit != SRV_POST) {
        return reply_problem(req, 405, "use GET or POST");
    }
    struct chal_server *cs = req->srv->chal;
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return reply_problem(req, st, "%s", buf);
    }
    slc_config_free(cfg);
    int status = 200;
    if (req->method_bit == SRV_POST) {
        if (store_rescore_begin(cs->store, c.name, msg, sizeof msg) != 0) {
            store_challenge_clear(&c);
            log_store("rescore", msg);
            return reply_problem(req, 503, "the challenge store is unavailable");
        }
        chal_rescore_kick(cs);
        store_challenge_clear(&c);
        load_challenge(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
        slc_config_free(cfg);
        status = 202;
    }
    json_t *j = json_pack("{s:I, s:I, s:I, s:b}", "done", (json_int_t)c.rescore_done, "failed",
                          (json_int_t)c.rescore_failed, "total", (json_int_t)c.rescore_total,
                          "running", c.rescore_running);
    store_challenge_clear(&c);
    return reply_json(req, status, j);
}

/* ---- /metrics --------------------------------------------------------------------------- */

void chal_metrics(struct srv_server *srv, struct slp_dynbuf *b)
{
    struct store_count *counts = NULL;
    size_t n = 0;
    char msg[256];
    if (store_sub_counts(srv->chal->store, &counts, &n, msg, sizeof msg) != 0) {
        log_store("metrics", msg);
        return;
    }
    slp_dynbuf_adds(b, "# HELP segloss_challenge_submissions Submissions stored, by challenge and "
                       "status.\n# TYPE segloss_challenge_submissions gauge\n");
    for (size_t i = 0; i < n; i++) {
        /* challenge names are [a-z0-9-]: nothing to escape in a label */
        slp_dynbuf_addf(b, "segloss_challenge_submissions{challenge=\"%s\",status=\"%s\"} %lld\n",
                        counts[i].challenge, status_names[counts[i].status],
                        (long long)counts[i].n);
    }
    free(counts);
    pthread_mutex_lock(&srv->chal->mu);
    uint64_t ok = srv->chal->answered[STORE_SCORED], bad = srv->chal->answered[STORE_FAILED];
    pthread_mutex_unlock(&srv->chal->mu);
    slp_dynbuf_addf(b,
                    "# HELP segloss_challenge_answers_total Submissions answered since start, by "
                    "outcome.\n# TYPE segloss_challenge_answers_total counter\n"
                    "segloss_challenge_answers_total{status=\"scored\"} %llu\n"
                    "segloss_challenge_answers_total{status=\"failed\"} %llu\n",
                    (unsigned long long)ok, (unsigned long long)bad);
}

/* ---- opening and closing ------------------------------------------------------------------- */

/* Reads the admin token from path (trailing whitespace dropped) and keeps its SHA-256. */
static int admin_token_read(struct chal_server *cs, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the admin token file %s: %s", path, strerror(errno));
        return -1;
    }
    char tok[600];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    while (n > 0 &&
           (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t')) {
        n--;
    }
    if (n < 16 || n > 512) {
        snprintf(err, errlen, "the admin token in %s must be 16 to 512 characters", path);
        explicit_bzero(tok, sizeof tok);
        return -1;
    }
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, tok, n);
    slp_sha256_final(&s, cs->admin_hash);
    explicit_bzero(tok, sizeof tok);
    return 0;
}

/* Creates DIR/admin.token (mode 0600) with a new random token when it does not exist. */
static int admin_token_make(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return 0;
        }
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char raw[32];
    char tok[66];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "no random bytes for the admin token");
        return -1;
    }
    slp_hex(raw, sizeof raw, tok);
    tok[64] = '\n';
    bool ok = write(fd, tok, 65) == 65 && fsync(fd) == 0;
    explicit_bzero(tok, sizeof tok);
    explicit_bzero(raw, sizeof raw);
    if (close(fd) != 0 || !ok) {
        unlink(path);
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    fprintf(stderr, "seglossd: challenges: the admin token is in %s (mode 0600)\n", path);
    return 0;
}

int chal_server_open(struct srv_server *srv, char *err, size_t errlen)
{
    const struct srv_config *cfg = &srv->cfg;
    srv->chal = NULL;
    if (!cfg->data_dir[0]) {
        return 0;
    }
    struct chal_server *cs = calloc(1, sizeof *cs);
    if (!cs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, NULL);
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the data directory %s: %s", cfg->data_dir,
                 strerror(errno));
        goto fail;
    }
    char path[1100];
    if (cfg->admin_token_file[0]) {
        snprintf(path, sizeof path, "%s", cfg->admin_token_file);
    } else {
        snprintf(path, sizeof path, "%s/admin.token", cfg->data_dir);
        if (admin_token_make(path, err, errlen) != 0) {
            goto fail;
        }
    }
    if (admin_token_read(cs, path, err, errlen) != 0) {
        goto fail;
    }
    if (store_open_sqlite(cfg->data_dir, &cs->store, err, errlen) != 0) {
        goto fail;
    }
    srv->chal = cs;
    if (chal_rescore_start(srv) != 0) {
        snprintf(err, errlen, "cannot start the re-score thread");
        srv->chal = NULL;
        store_close(cs->store);
        goto fail;
    }
    return 0;
fail:
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->wake);
    free(cs);
    return -1;
}

void chal_server_close(struct srv_server *srv)
{
    struct chal_server *cs = srv->chal;
    if (!cs) {
        return;
    }
    chal_rescore_stop(cs);
    store_close(cs->store);
    chal_ref_cache_free(cs);
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        free(cs->boards[i].text);
    }
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->wake);
    explicit_bzero(cs->admin_hash, sizeof cs->admin_hash);
    free(cs);
    srv->chal = NULL;
}
