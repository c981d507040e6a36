/* chal_subs.c - submissions (CHALLENGES.md "Submissions"): admission (window, quotas) before the
 * body, scoring on both splits, the stored blob and row, the 201; the lists, the admin's export,
 * finals, disqualification, and the re-score route.
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

/* ---- submissions ------------------------------------------------------------------------ */

const char *const chal_status_names[3] = {"scoring", "scored", "failed"};

/* One submission as the API shows it to who (admin: everything). A new object. */
static json_t *sub_json(const struct store_sub *sub, const struct slc_config *cfg, bool admin)
{
    char at[40];
    chal_time_format(sub->received_at, at, sizeof at);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:b}", "id", sub->id, "participant",
                  sub->participant_name, "received_at", at, "sha256", sub->body_sha, "bytes",
                  (json_int_t)sub->bytes, "status", chal_status_names[sub->status], "note",
                  sub->note ? sub->note : "", "final", sub->final_, "stale", sub->stale);
    if (!j) {
        return NULL;
    }
    if (sub->status == STORE_SCORED) {
        json_object_set_new(j, "public", chal_scores_json(sub->pub_values, cfg));
        if (admin || cfg->private_visible) {
            json_object_set_new(j, "private", chal_scores_json(sub->priv_values, cfg));
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
            chal_csv_cell(&d, col, false);
        }
    }
    slp_dynbuf_adds(&d, "\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct store_sub *sub = &subs[i];
        char t[40];
        chal_time_format(sub->received_at, t, sizeof t);
        chal_csv_cell(&d, sub->id, true);
        chal_csv_cell(&d, sub->participant_name, false);
        chal_csv_cell(&d, t, false);
        chal_csv_cell(&d, chal_status_names[sub->status], false);
        chal_csv_cell(&d, sub->error ? sub->error : "", false);
        chal_csv_cell(&d, sub->body_sha, false);
        slp_dynbuf_add(&d, ",", 1);
        slp__write_int(&d, sub->bytes);
        slp_dynbuf_add(&d, ",", 1);
        slp__write_int(&d, sub->config_version);
        chal_csv_cell(&d, sub->ref_sha, false);
        chal_csv_cell(&d, sub->server_version, false);
        chal_csv_cell(&d, sub->stale ? "true" : "false", false);
        chal_csv_cell(&d, sub->final_ ? "true" : "false", false);
        chal_csv_cell(&d, sub->disqualified ? "true" : "false", false);
        chal_csv_cell(&d, sub->dq_reason ? sub->dq_reason : "", false);
        chal_csv_cell(&d, sub->note ? sub->note : "", false);
        const char *texts[2] = {sub->pub_values, sub->priv_values};
        for (int s = 0; s < 2 && names; s++) {
            json_t *v = texts[s] ? json_loads(texts[s], 0, NULL) : NULL;
            for (size_t c = 0; c < nk; c++) {
                chal_csv_num(&d, json_object_get(v, names[c]));
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
        return chal_reply_problem(req, 503, "out of memory writing the export");
    }
    return srv_reply_hdrs(req, 200, "text/csv; charset=utf-8", text, len, true, NULL);
}

enum MHD_Result chal_h_submissions(struct srv_req *req)
{
    enum MHD_Result ret;
    if (chal_gate_reply(req, true, NEED_PARTICIPANT_OR_ADMIN, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    bool admin = req->auth.who == WHO_ADMIN;
    const char *format = chal_query(req, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        return chal_reply_problem(req, 422, "format: '%.40s' is not json or csv", format);
    }
    bool csv = format && strcmp(format, "csv") == 0;
    if (csv && !admin) {
        return chal_reply_problem(req, 403, "the CSV export is the organiser's");
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400], msg[256];
    int st = chal_load(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return chal_reply_problem(req, st, "%s", buf);
    }
    store_challenge_clear(&c);
    struct store_sub *subs = NULL;
    size_t n = 0;
    if (store_sub_list(cs->store, req->params[0], admin ? -1 : req->auth.pid, admin && !csv, &subs,
                       &n, msg, sizeof msg) != 0) {
        slc_config_free(cfg);
        chal_log_store("submission list", msg);
        return chal_reply_problem(req, 503, "the challenge store is unavailable");
    }
    if (csv) {
        ret = export_csv(req, subs, n);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, sub_json(&subs[i], cfg, admin));
        }
        ret = chal_reply_json(req, 200, json_pack("{s:o}", "submissions", arr));
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
        chal_log_store("submission get", msg);
        snprintf(buf, n, "the challenge store is unavailable");
        return 503;
    }
    return 0;
}

enum MHD_Result chal_h_submission(struct srv_req *req)
{
    enum MHD_Result ret;
    struct store_challenge c;
    struct slc_config *cfg;
    if (chal_begin(req, NEED_PARTICIPANT_OR_ADMIN, &c, &cfg, &ret)) {
        return ret;
    }
    char buf[400];
    store_challenge_clear(&c);
    struct store_sub sub;
    bool admin = req->auth.who == WHO_ADMIN;
    int st = load_sub(req, admin, &sub, buf, sizeof buf);
    if (st) {
        slc_config_free(cfg);
        return chal_reply_problem(req, st, "%s", buf);
    }
    json_t *j = sub_json(&sub, cfg, admin);
    store_sub_clear(&sub);
    slc_config_free(cfg);
    return chal_reply_json(req, 200, j);
}

enum MHD_Result chal_h_final(struct srv_req *req)
{
    enum MHD_Result ret;
    struct store_challenge c;
    struct slc_config *cfg;
    if (chal_begin(req, NEED_PARTICIPANT, &c, &cfg, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    char buf[400], msg[256];
    store_challenge_clear(&c);
    bool on = req->method_bit == SRV_PUT;
    int rc = store_sub_set_final(cs->store, req->params[0], req->params[1], req->auth.pid, on,
                                 cfg->final_selections, msg, sizeof msg);
    int64_t max = cfg->final_selections;
    slc_config_free(cfg);
    if (rc == STORE_ECONFLICT) {
        return chal_reply_problem(req, 409,
                                  "final: %lld submissions may be selected (final_selections); "
                                  "unselect one first (DELETE .../submissions/{id}/final)",
                                  (long long)max);
    }
    if (rc == STORE_ENOTFOUND) {
        return chal_reply_problem(req, 404, "no submission '%s' of yours in challenge '%s'",
                                  req->params[1], req->params[0]);
    }
    if (rc == SL_EINVAL) {
        return chal_reply_problem(req, 409, "final: only a scored submission may be selected");
    }
    if (rc) {
        chal_log_store("final", msg);
        return chal_reply_problem(req, 503, "the challenge store is unavailable");
    }
    struct store_sub sub;
    int st = load_sub(req, false, &sub, buf, sizeof buf);
    if (st) {
        return chal_reply_problem(req, st, "%s", buf);
    }
    chal_load(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (cfg) {
        chal_board_refresh(cs, &c, cfg, NULL, 0);
    }
    json_t *j = cfg ? sub_json(&sub, cfg, false) : NULL;
    store_sub_clear(&sub);
    slc_config_free(cfg);
    store_challenge_clear(&c);
    return chal_reply_json(req, 200, j);
}

void chal_c_patch(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    struct chal_server *cs = req->srv->chal;
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        chal_resp_problem(resp, 400, "malformed JSON at line %d, column %d: %s", jerr.line,
                          jerr.column, jerr.text);
        return;
    }
    json_t *dq = json_object_get(j, "disqualified");
    json_t *reason = json_object_get(j, "reason");
    const char *k;
    json_t *x;
    json_object_foreach(j, k, x)
    {
        if (strcmp(k, "disqualified") != 0 && strcmp(k, "reason") != 0) {
            chal_resp_problem(resp, 422,
                              "%.64s: unknown key; the body is {\"disqualified\": "
                              "true|false, \"reason\": TEXT}",
                              k);
            json_decref(j);
            return;
        }
    }
    if (!json_is_boolean(dq) || (reason && !json_is_string(reason) && !json_is_null(reason))) {
        chal_resp_problem(resp, 422,
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
        chal_resp_problem(resp, 404, "no submission '%s' in challenge '%s'", req->params[1],
                          req->params[0]);
        return;
    }
    if (rc) {
        chal_log_store("disqualify", msg);
        chal_resp_problem(resp, 503, "the challenge store is unavailable");
        return;
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    int st = chal_load(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        return;
    }
    chal_board_refresh(cs, &c, cfg, NULL, 0);
    struct store_sub sub;
    if (store_sub_get(cs->store, req->params[0], req->params[1], false, &sub, msg, sizeof msg) ==
        0) {
        chal_resp_json(resp, 200, sub_json(&sub, cfg, true));
        store_sub_clear(&sub);
    } else {
        chal_resp_problem(resp, 503, "the challenge store is unavailable");
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
    /* the public board is built once: for the rank, and kept rendered for the next reader */
    int64_t rank = chal_board_refresh(cs, c, cfg, sub->pub_values, sub->participant);
    json_object_set_new(j, "public_rank", rank > 0 ? json_integer(rank) : json_null());
    struct chal_quota q = {cfg->per_day, cfg->total, cfg->concurrent};
    struct chal_quota_view v;
    chal_quota_view(&q, after, now, &v);
    json_t *quota = json_object();
    json_object_set_new(quota, "used_today", json_integer(v.used_today));
    json_object_set_new(quota, "per_day", v.per_day < 0 ? json_null() : json_integer(v.per_day));
    json_object_set_new(quota, "remaining_today",
                        v.remaining_today < 0 ? json_null() : json_integer(v.remaining_today));
    json_object_set_new(quota, "resets_at", chal_time_json(v.resets_at));
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
    slp_dynbuf_init(&b, chal_bundle_cap(imgs));
    int rc = prc;
    int status = rc ? slp_http_status(rc) : 0;
    if (rc == 0) {
        rc = chal_ref_get(cs, c, &req->srv->limits, &ref, msg, sizeof msg);
        status = rc ? 503 : 0;
    }
    if (rc == 0) {
        rc = chal_score(cfg, ref, imgs, &req->srv->limits, req->srv->pool, &sc, msg, sizeof msg);
        status = rc ? (rc == SL_ENOMEM ? 503 : 422) : 0;
    }
    char sha[STORE_SHA_HEX] = "";
    if (rc == 0) {
        qsort(imgs->items, imgs->n, sizeof *imgs->items, chal_cmp_image);
        rc = slc_bundle_write(imgs, &b) != 0 ? SL_ENOMEM : 0;
        if (rc == 0) {
            rc = store_blob_put(cs->store, b.data, b.len, sha, smsg, sizeof smsg);
        }
        if (rc) {
            chal_log_store("submission blob", smsg);
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
        chal_log_store("submission finish", smsg);
        slp_problem(503, "the submission could not be stored", resp);
    } else if (rc) {
        chal_board_refresh(cs, c, cfg, NULL, 0); /* the commit moved the generation on */
        slp_problem(status, msg, resp);
    } else {
        struct store_sub sub;
        if (store_sub_get(cs->store, c->name, id, false, &sub, smsg, sizeof smsg) == 0) {
            struct chal_usage after = *before;
            after.scored_today++;
            after.scored_total++;
            chal_resp_json(resp, 201, created_json(cs, c, cfg, &sub, &after, now));
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
    int st = chal_load(cs, name, &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        slp_problem(st, buf, resp);
        return;
    }
    if (!c.ref_sha[0]) {
        chal_resp_problem(resp, 409,
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
    chal_time now = chal_now();
    int rc = store_sub_admit(cs->store, name, req->auth.pid, "", now, &q, cfg->opens_at,
                             cfg->closes_at, &v, &usage, &retry, id, smsg, sizeof smsg);
    if (rc) {
        chal_log_store("submission admit", smsg);
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
    /* the route table lets only GET, HEAD and POST through */
    enum MHD_Result ret;
    struct store_challenge c;
    struct slc_config *cfg;
    if (chal_begin(req, NEED_ADMIN, &c, &cfg, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    char buf[400], msg[256];
    slc_config_free(cfg);
    int status = 200;
    if (req->method_bit == SRV_POST) {
        if (store_rescore_begin(cs->store, c.name, msg, sizeof msg) != 0) {
            store_challenge_clear(&c);
            chal_log_store("rescore", msg);
            return chal_reply_problem(req, 503, "the challenge store is unavailable");
        }
        chal_rescore_kick(cs);
        store_challenge_clear(&c);
        chal_load(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
        if (cfg) {
            chal_board_refresh(cs, &c, cfg, NULL, 0);
        }
        slc_config_free(cfg);
        status = 202;
    }
    json_t *j = json_pack("{s:I, s:I, s:I, s:b}", "done", (json_int_t)c.rescore_done, "failed",
                          (json_int_t)c.rescore_failed, "total", (json_int_t)c.rescore_total,
                          "running", c.rescore_running);
    store_challenge_clear(&c);
    return chal_reply_json(req, status, j);
}
