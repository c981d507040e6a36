/* chal_http.c - the challenge routes (CHALLENGES.md "Routes"): the helpers every challenge file
 * answers with, and the handlers of a challenge's configuration, reference and participants.
 * chal_auth.c checks who is asking, chal_board.c makes the leaderboards, chal_subs.c takes the
 * submissions; routes without a body answer on the I/O thread at completion (store reads and
 * short writes), routes with a body run on a compute worker like /v1/score.
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

/* ---- small helpers ------------------------------------------------------------------------ */

/* Now, in microseconds since the epoch. */
chal_time chal_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (chal_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A new JSON string of time t (RFC 3339, Z), or null for none. */
json_t *chal_time_json(chal_time t)
{
    if (t == INT64_MIN || t == INT64_MAX) {
        return json_null();
    }
    char buf[40];
    chal_time_format(t, buf, sizeof buf);
    return json_string(buf);
}

/* Fills resp with j (stolen) as an application/json answer of status. */
void chal_resp_json(struct slp_response *resp, int status, json_t *j)
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
void chal_resp_problem(struct slp_response *resp, int status, const char *fmt, ...)
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
enum MHD_Result chal_reply_json(struct srv_req *req, int status, json_t *j)
{
    struct slp_response r = {0};
    chal_resp_json(&r, status, j);
    return reply_resp(req, &r, NULL, NULL);
}

/* Queues a problem answer; a 401 carries WWW-Authenticate. */
enum MHD_Result chal_reply_problem(struct srv_req *req, int status, const char *fmt, ...)
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
void chal_log_store(const char *what, const char *msg)
{
    fprintf(stderr, "seglossd: challenges: %s: %s\n", what, msg);
}

/* A query argument of req, or NULL. */
const char *chal_query(struct srv_req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- the challenge and its configuration ------------------------------------------------ */

/* Loads challenge name and its configuration. Returns 0, or a status with the detail in buf. */
int chal_load(struct chal_server *cs, const char *name, const struct slp_limits *lim,
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
        chal_log_store("challenge get", msg);
        snprintf(buf, n, "the challenge store is unavailable");
        return 503;
    }
    rc = slc_config_parse(c->config, strlen(c->config), lim, cfg, msg, sizeof msg);
    if (rc) {
        chal_log_store("stored configuration", msg);
        snprintf(buf, n, "challenge '%s': its stored configuration does not load: %s", name, msg);
        store_challenge_clear(c);
        return 500;
    }
    return 0;
}

/* The keys' list [{"key", "order"}] of n keys. */
json_t *chal_keys_json(const struct slc_key *k, int n, const struct slc_config *cfg)
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

json_t *chal_describe(const struct store_challenge *c, const struct slc_config *cfg, bool admin)
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
    json_object_set_new(j, "ranking", chal_keys_json(cfg->ranking, cfg->nranking, cfg));
    json_object_set_new(j, "columns", chal_keys_json(cfg->columns, cfg->ncolumns, cfg));
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
    json_object_set_new(j, "created_at", chal_time_json(c->created_at));
    json_object_set_new(j, "updated_at", chal_time_json(c->updated_at));
    return j;
}

json_t *chal_list_json(struct chal_server *cs, const struct slp_limits *lim, bool admin)
{
    struct store_challenge *list = NULL;
    size_t n = 0;
    char msg[256];
    if (store_challenge_list(cs->store, &list, &n, msg, sizeof msg) != 0) {
        chal_log_store("challenge list", msg);
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct slc_config *cfg = NULL;
        if (slc_config_parse(list[i].config, strlen(list[i].config), lim, &cfg, msg, sizeof msg) !=
            0) {
            continue;
        }
        json_t *d = chal_describe(&list[i], cfg, admin);
        slc_config_free(cfg);
        if (d) {
            json_array_append_new(arr, d);
        }
    }
    store_challenge_free(list, n);
    return json_pack("{s:o}", "challenges", arr);
}

enum MHD_Result chal_h_list(struct srv_req *req)
{
    enum MHD_Result ret;
    if (chal_gate_reply(req, false, NEED_ANYONE, &ret)) {
        return ret;
    }
    json_t *doc = chal_list_json(req->srv->chal, &req->srv->limits, req->auth.who == WHO_ADMIN);
    if (!doc) {
        return chal_reply_problem(req, 503, "the challenge store is unavailable");
    }
    return chal_reply_json(req, 200, doc);
}

enum MHD_Result chal_h_get(struct srv_req *req)
{
    enum MHD_Result ret;
    struct store_challenge c;
    struct slc_config *cfg;
    if (chal_begin(req, NEED_ANYONE, &c, &cfg, &ret)) {
        return ret;
    }
    json_t *d = chal_describe(&c, cfg, req->auth.who == WHO_ADMIN);
    slc_config_free(cfg);
    store_challenge_clear(&c);
    return chal_reply_json(req, 200, d);
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
    int st = chal_load(cs, name, &req->srv->limits, &old, &oldcfg, buf, sizeof buf);
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
    rc = text ? store_challenge_put(cs->store, name, text, public_ids, rescore, chal_now(),
                                    &created, &version, msg, sizeof msg)
              : SL_ENOMEM;
    free(text);
    if (rc) {
        chal_log_store("challenge put", msg);
        slp_problem(503, "the challenge store is unavailable", resp);
        goto out;
    }
    if (rescore) {
        chal_rescore_kick(cs);
    }
    struct store_challenge now;
    struct slc_config *nowcfg = NULL;
    st = chal_load(cs, name, &req->srv->limits, &now, &nowcfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        goto out;
    }
    chal_board_refresh(cs, &now, nowcfg, NULL, 0);
    chal_resp_json(resp, created ? 201 : 200, chal_describe(&now, nowcfg, true));
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
size_t chal_bundle_cap(const struct slc_images *imgs)
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
int chal_cmp_image(const void *a, const void *b)
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
    slp_dynbuf_init(&b, chal_bundle_cap(imgs));
    if (rc) {
        slp_problem(slp_http_status(rc), msg, resp);
        slc_images_free(imgs);
        return;
    }
    int st = chal_load(cs, name, &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        slc_images_free(imgs);
        return;
    }
    qsort(imgs->items, imgs->n, sizeof *imgs->items, chal_cmp_image);
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
                                                        chal_now(), &created, smsg, sizeof smsg)
                                  : SL_ENOMEM;
    }
    if (rc) {
        chal_log_store("reference put", smsg);
        slp_problem(503, "the challenge store could not keep the reference", resp);
        goto out;
    }
    chal_rescore_kick(cs);
    chal_board_refresh(cs, &c, cfg, NULL, 0);
    size_t npub = json_array_size(pub);
    chal_resp_json(resp, created ? 201 : 200,
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
        chal_resp_problem(resp, 400, "malformed JSON at line %d, column %d: %s", jerr.line,
                          jerr.column, jerr.text);
        return;
    }
    if (!json_is_object(j) || json_object_size(j) != 1 || !name) {
        json_decref(j);
        chal_resp_problem(resp, 422, "the body is {\"name\": NAME} and nothing else");
        return;
    }
    if (!chal_participant_ok(name)) {
        chal_resp_problem(resp, 422,
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
        chal_resp_problem(resp, 503, "no random bytes for a token (getrandom failed)");
        return;
    }
    slp_hex(raw, sizeof raw, token);
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, token, 64);
    slp_sha256_final(&s, hash);
    struct store_participant p;
    char msg[256];
    int rc = store_participant_add(cs->store, c, name, hash, chal_now(), &p, msg, sizeof msg);
    if (rc == STORE_ECONFLICT) {
        chal_resp_problem(resp, 409, "name: participant '%s' already exists in challenge '%s'",
                          name, c);
    } else if (rc == STORE_ENOTFOUND) {
        chal_resp_problem(resp, 404, "no challenge '%s'", c);
    } else if (rc) {
        chal_log_store("participant add", msg);
        chal_resp_problem(resp, 503, "the challenge store is unavailable");
    } else {
        char at[40];
        chal_time_format(p.created_at, at, sizeof at);
        chal_resp_json(resp, 201,
                       json_pack("{s:s, s:s, s:s, s:s}", "name", name, "token", token, "challenge",
                                 c, "created_at", at));
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(raw, sizeof raw);
    json_decref(j);
}

enum MHD_Result chal_h_participants(struct srv_req *req)
{
    enum MHD_Result ret;
    struct store_challenge c;
    struct slc_config *cfg;
    if (chal_begin(req, NEED_ADMIN, &c, &cfg, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    char msg[256];
    slc_config_free(cfg);
    store_challenge_clear(&c);
    struct store_participant *ps = NULL;
    size_t n = 0;
    if (store_participant_list(cs->store, req->params[0], &ps, &n, msg, sizeof msg) != 0) {
        chal_log_store("participant list", msg);
        return chal_reply_problem(req, 503, "the challenge store is unavailable");
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
    return chal_reply_json(req, 200, json_pack("{s:o}", "participants", arr));
}

enum MHD_Result chal_h_revoke(struct srv_req *req)
{
    enum MHD_Result ret;
    if (chal_gate_reply(req, true, NEED_ADMIN, &ret)) {
        return ret;
    }
    char msg[256];
    int rc = store_participant_revoke(req->srv->chal->store, req->params[0], req->params[1],
                                      chal_now(), msg, sizeof msg);
    if (rc == STORE_ENOTFOUND) {
        return chal_reply_problem(req, 404,
                                  "no participant '%s' in challenge '%s' (or already revoked)",
                                  req->params[1], req->params[0]);
    }
    if (rc) {
        chal_log_store("participant revoke", msg);
        return chal_reply_problem(req, 503, "the challenge store is unavailable");
    }
    chal_board_refresh_name(req->srv->chal, req->params[0], &req->srv->limits);
    return srv_reply_hdrs(req, 204, "application/json", (void *)"", 0, false, NULL);
}
