/* test_openapi.c - proto/openapi.json (as the build embeds it) cannot drift from the loss and
 * metric tables: the loss and metric names, and every parameter's schema (name, type, default,
 * range, choices, pairing rules) against its row in lib/table.c. The tables are the truth; a
 * failure names the schema and the parameter to fix. Nor can it drift from seglossd's route
 * table (server/route.c srv_routes): every row's path with an operation per method, its path
 * parameters declared, and every "$ref" of the document resolving inside it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "proto.h"
#include "segloss.h"
#include "srv_internal.h"

static json_t *schemas; /* components.schemas (borrowed from the document) */

/* CHECK(cond) that names the schema and what differs when it fails. */
#define SAME(cond, where, what)                                                                    \
    do {                                                                                           \
        CHECK(cond);                                                                               \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  openapi.json %s: %s differs from the table\n", where, what);        \
        }                                                                                          \
    } while (0)

/* A new reference to node with its "$ref" (one level) replaced by the referenced schema; the
 * node's own keys override the referenced ones (a "$ref" with a local "description"). */
static json_t *resolve(json_t *node)
{
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    const char *prefix = "#/components/schemas/";
    if (!ref || strncmp(ref, prefix, strlen(prefix)) != 0) {
        return json_deep_copy(node);
    }
    json_t *out = json_deep_copy(json_object_get(schemas, ref + strlen(prefix)));
    if (!out) {
        return json_object();
    }
    json_object_update(out, node);
    json_object_del(out, "$ref");
    return out;
}

/* Whether JSON type t (a string or a list of strings) includes name. */
static bool has_type(json_t *t, const char *name)
{
    if (json_is_string(t)) {
        return strcmp(json_string_value(t), name) == 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e)
    {
        if (strcmp(json_string_value(e), name) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether names (a JSON list of strings) is exactly the NULL-terminated list want, in order. */
static bool same_names(json_t *names, const char *const *want)
{
    size_t n = 0;
    while (want && want[n]) {
        n++;
    }
    if (!json_is_array(names) || json_array_size(names) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(names, i));
        if (!s || strcmp(s, want[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* The range of a number schema s against row p: minimum or exclusiveMinimum, maximum when
 * finite. An integer schema with an "enum" lists its values instead: each must be an integer
 * in the row's range. */
static void check_range(const struct sl_param_def *p, json_t *s, const char *where)
{
    json_t *en = json_object_get(s, "enum");
    if (p->type == SL_PT_INTEGER && json_is_array(en)) {
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e)
        {
            double v = json_number_value(e);
            SAME(json_is_integer(e) && v >= p->min && v <= p->max, where, "an enum value");
        }
        return;
    }
    json_t *lo = json_object_get(s, p->min_open ? "exclusiveMinimum" : "minimum");
    SAME(json_is_number(lo) && json_number_value(lo) == p->min, where, "the minimum");
    SAME(!json_object_get(s, p->min_open ? "minimum" : "exclusiveMinimum"), where,
         "the kind of minimum");
    json_t *hi = json_object_get(s, "maximum");
    if (isfinite(p->max)) {
        SAME(json_is_number(hi) && json_number_value(hi) == p->max, where, "the maximum");
    } else {
        SAME(hi == NULL, where, "the maximum (the row has none)");
    }
}

/* The alternative of a oneOf whose type is name (or whose const/enum is a string, for
 * "string"), or NULL. */
static json_t *alternative(json_t *s, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(s, "oneOf"), i, e)
    {
        if (has_type(json_object_get(e, "type"), name) ||
            (strcmp(name, "string") == 0 && json_is_string(json_object_get(e, "const")))) {
            return e;
        }
    }
    return NULL;
}

/* The schema's default against the row's: a row default "absent" means that not giving the
 * parameter is meaningful (the schema may document what follows, or nothing); a row default
 * null is "no list" (the schema may document the list it stands for). */
static void check_default(const struct sl_param_def *p, json_t *s, const char *where)
{
    json_t *d = json_object_get(s, "default");
    const struct sl_value *v = &p->def;
    switch (v->kind) {
    case SL_V_NUMBER:
        if (!d && json_is_array(json_object_get(s, "enum"))) {
            /* a sentinel outside the documented values ("0: automatic") */
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(s, "enum"), i, e)
            {
                SAME(json_number_value(e) != v->num, where, "the default (undocumented)");
            }
            return;
        }
        SAME(json_is_number(d) && json_number_value(d) == v->num, where, "the default");
        return;
    case SL_V_BOOL:
        SAME(json_is_boolean(d) && json_is_true(d) == v->b, where, "the default");
        return;
    case SL_V_ENUM:
        SAME(json_is_string(d) && strcmp(json_string_value(d), p->choices[v->choice]) == 0, where,
             "the default");
        return;
    case SL_V_NULL:
        SAME(!d || json_is_null(d) || json_is_array(d), where, "the default (the row's is null)");
        return;
    case SL_V_ABSENT:
    case SL_V_LIST:
        return;
    }
}

/* One parameter's schema s (resolved) against its row p. */
static void check_param(const struct sl_param_def *p, json_t *s, const char *where)
{
    json_t *t = json_object_get(s, "type");
    json_t *num, *str, *arr;
    check_default(p, s, where);
    switch (p->type) {
    case SL_PT_NUMBER:
        SAME(has_type(t, "number") && !has_type(t, "null"), where, "the type (number)");
        check_range(p, s, where);
        return;
    case SL_PT_INTEGER:
        SAME(has_type(t, "integer"), where, "the type (integer)");
        check_range(p, s, where);
        return;
    case SL_PT_BOOL:
        SAME(has_type(t, "boolean"), where, "the type (boolean)");
        return;
    case SL_PT_ENUM:
        SAME(has_type(t, "string") && same_names(json_object_get(s, "enum"), p->choices), where,
             "the choices");
        return;
    case SL_PT_NUMBER_NULL:
        SAME(has_type(t, "number") && has_type(t, "null"), where, "the type (number or null)");
        check_range(p, s, where);
        return;
    case SL_PT_NUMBER_ENUM:
        num = alternative(s, "number");
        str = alternative(s, "string");
        SAME(num != NULL, where, "the number alternative");
        SAME(str != NULL, where, "the name alternative");
        if (num) {
            check_range(p, num, where);
        }
        if (str) {
            json_t *names = json_object_get(str, "enum");
            json_t *one = json_is_string(json_object_get(str, "const"))
                              ? json_pack("[O]", json_object_get(str, "const"))
                              : json_incref(names);
            SAME(same_names(one, p->choices), where, "the choices");
            json_decref(one);
        }
        return;
    case SL_PT_TERMS:
        SAME(has_type(t, "array") && json_number_value(json_object_get(s, "minItems")) == p->min &&
                 json_number_value(json_object_get(s, "maxItems")) == p->max,
             where, "the number of terms");
        return;
    case SL_PT_LIST:
        SAME(has_type(t, "array") && has_type(t, "null"), where, "the type (list or null)");
        check_range(p, json_object_get(s, "items"), where);
        return;
    case SL_PT_NUMBER_LIST:
        num = alternative(s, "number");
        arr = alternative(s, "array");
        SAME(num && !alternative(s, "null") && arr, where, "the alternatives (number, list)");
        if (num && arr) {
            check_range(p, num, where);
            check_range(p, json_object_get(arr, "items"), where);
        }
        return;
    case SL_PT_NUMBER_NULL_LIST:
        num = alternative(s, "number");
        arr = alternative(s, "array");
        SAME(num && alternative(s, "null") && arr, where, "the alternatives (number, null, list)");
        if (num && arr) {
            check_range(p, num, where);
            check_range(p, json_object_get(arr, "items"), where);
        }
        return;
    }
    SAME(false, where, "the parameter type");
}

/* Whether a NULL-terminated-free list of names (JSON enum) is the set of rows of table[n]
 * that pass keep. */
static void check_name_enum(json_t *en, const struct sl_def *table, int n, unsigned skip_flags,
                            const char *where)
{
    size_t want = 0;
    for (int i = 0; i < n; i++) {
        bool in = false;
        size_t k;
        json_t *e;
        json_array_foreach(en, k, e)
        {
            in = in || strcmp(json_string_value(e), table[i].name) == 0;
        }
        if (table[i].flags & skip_flags) {
            SAME(!in, where, table[i].name);
        } else {
            SAME(in, where, table[i].name);
            want++;
        }
    }
    SAME(json_array_size(en) == want, where, "the number of names");
}

/* The schemas of a oneOf list of $refs, by their properties.name.const; checks that they are
 * the rows of the loss table without skip_flags, each once. */
static void check_loss_forms(json_t *one_of, unsigned skip_flags, const char *where)
{
    int n;
    const struct sl_def *t = sl_loss_table(&n);
    size_t want = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        size_t k;
        json_t *e;
        json_array_foreach(one_of, k, e)
        {
            json_t *s = resolve(e);
            const char *name = json_string_value(json_object_get(
                json_object_get(json_object_get(s, "properties"), "name"), "const"));
            seen += name && strcmp(name, t[i].name) == 0;
            json_decref(s);
        }
        SAME(seen == ((t[i].flags & skip_flags) ? 0 : 1), where, t[i].name);
        want += !(t[i].flags & skip_flags);
    }
    SAME(json_array_size(one_of) == want, where, "the number of forms");
}

/* The pairing rules of a loss schema (dependentRequired, not.required) against its rows. */
static void check_pairs(const struct sl_def *d, json_t *s, const char *where)
{
    json_t *dep = json_object_get(s, "dependentRequired");
    json_t *excl = json_object_get(json_object_get(s, "not"), "required");
    size_t ndep = 0, nexcl = 0;
    for (int k = 0; k < d->nparams; k++) {
        const struct sl_param_def *p = &d->params[k];
        json_t *r = json_object_get(dep, p->name);
        if (p->requires) {
            SAME(json_array_size(r) == 1 &&
                     strcmp(json_string_value(json_array_get(r, 0)), p->requires) == 0,
                 where, "dependentRequired");
            ndep++;
        } else {
            SAME(r == NULL, where, "dependentRequired (the row has none)");
        }
        if (p->excludes) {
            bool found = false;
            size_t i;
            json_t *e;
            json_array_foreach(excl, i, e)
            {
                found = found || strcmp(json_string_value(e), p->excludes) == 0;
            }
            SAME(found, where, "not.required");
            nexcl++;
        }
    }
    SAME(json_object_size(dep) == ndep, where, "dependentRequired");
    SAME(json_array_size(excl) == (nexcl ? nexcl + 1 : 0), where, "not.required");
}

/* Every loss row against its schema in LossSpec: the keys are name, as, weight (as a term:
 * every row but a sum of terms) and the row's parameters, each as its row says. */
static void test_loss_schemas(void)
{
    int n;
    const struct sl_def *t = sl_loss_table(&n);
    json_t *forms = json_object_get(json_object_get(schemas, "LossSpec"), "oneOf");
    check_name_enum(json_object_get(json_object_get(schemas, "LossName"), "enum"), t, n,
                    SL_DEF_TERMS, "LossName.enum");
    check_loss_forms(forms, 0, "LossSpec.oneOf");
    check_loss_forms(json_object_get(json_object_get(schemas, "ComboTerm"), "oneOf"), SL_DEF_TERMS,
                     "ComboTerm.oneOf");
    size_t k;
    json_t *e;
    json_array_foreach(forms, k, e)
    {
        json_t *s = resolve(e);
        json_t *props = json_object_get(s, "properties");
        const char *name =
            json_string_value(json_object_get(json_object_get(props, "name"), "const"));
        const struct sl_def *d = name ? sl_find_loss(name) : NULL;
        char where[160];
        snprintf(where, sizeof where, "%s", json_string_value(json_object_get(e, "$ref")));
        SAME(d != NULL, where, "the loss name");
        if (d) {
            const bool term = !(d->flags & SL_DEF_TERMS);
            SAME(json_object_get(props, "as") != NULL, where, "as");
            SAME((json_object_get(props, "weight") != NULL) == term, where, "weight");
            SAME(json_is_false(json_object_get(s, "additionalProperties")), where,
                 "additionalProperties");
            SAME(json_object_size(props) == (size_t)d->nparams + 2 + term, where,
                 "the set of parameters");
            for (int i = 0; i < d->nparams; i++) {
                char pw[224];
                snprintf(pw, sizeof pw, "%s.%s", where, d->params[i].name);
                json_t *ps = json_object_get(props, d->params[i].name);
                SAME(ps != NULL, pw, "presence");
                if (ps) {
                    json_t *r = resolve(ps);
                    check_param(&d->params[i], r, pw);
                    json_decref(r);
                }
            }
            check_pairs(d, s, where);
        }
        json_decref(s);
    }
}

/* Removes from names the metric aliases (names whose row is called otherwise), each checked to
 * be followed by its row's name: an allOf lists a row's aliases after the row. */
static void drop_aliases(json_t *names)
{
    const char *prev = NULL;
    for (size_t i = 0; i < json_array_size(names);) {
        const char *nm = json_string_value(json_array_get(names, i));
        const struct sl_def *d = nm ? sl_find_metric(nm) : NULL;
        if (d && strcmp(d->name, nm) != 0) {
            SAME(prev && strcmp(prev, d->name) == 0, nm, "listed after its row");
            json_array_remove(names, i);
        } else {
            prev = nm;
            i++;
        }
    }
}

/* MetricAlias lists every alias of every metric row, in table order, and nothing else. */
static void test_metric_aliases(void)
{
    int n;
    const struct sl_def *t = sl_metric_table(&n);
    json_t *want = json_array();
    for (int i = 0; i < n; i++) {
        for (int k = 0; t[i].aliases && t[i].aliases[k]; k++) {
            json_array_append_new(want, json_string(t[i].aliases[k]));
        }
    }
    json_t *en = json_object_get(json_object_get(schemas, "MetricAlias"), "enum");
    SAME(json_equal(want, en), "MetricAlias.enum", "the aliases of the table's rows");
    json_decref(want);
}

/* Every metric row against MetricSpec: MetricName lists the rows; MetricSpec's keys are name,
 * as and the parameters of every row, each as its rows say, and its allOf gives each parameter
 * to exactly the rows that have it. */
static void test_metric_schemas(void)
{
    int n;
    const struct sl_def *t = sl_metric_table(&n);
    json_t *spec = json_object_get(schemas, "MetricSpec");
    json_t *props = json_object_get(spec, "properties");
    check_name_enum(json_object_get(json_object_get(schemas, "MetricName"), "enum"), t, n, 0,
                    "MetricName.enum");
    /* parameter -> the metrics the allOf allows it for */
    json_t *owners = json_object();
    size_t k, j;
    json_t *e, *r;
    json_array_foreach(json_object_get(spec, "allOf"), k, e)
    {
        json_t *cond = json_object_get(e, "if"), *keys = json_array();
        json_t *nm =
            json_object_get(json_object_get(json_object_get(e, "then"), "properties"), "name");
        json_array_extend(keys, json_object_get(cond, "required"));
        json_array_foreach(json_object_get(cond, "anyOf"), j, r)
        {
            json_array_extend(keys, json_object_get(r, "required"));
        }
        json_array_foreach(keys, j, r)
        {
            json_t *names = json_is_string(json_object_get(nm, "const"))
                                ? json_pack("[O]", json_object_get(nm, "const"))
                                : json_deep_copy(json_object_get(nm, "enum"));
            drop_aliases(names);
            json_object_set_new(owners, json_string_value(r), names);
        }
        json_decref(keys);
    }
    size_t nparams = 0;
    const char *key;
    json_t *v;
    json_object_foreach(props, key, v)
    {
        if (strcmp(key, "name") == 0 || strcmp(key, "as") == 0) {
            continue;
        }
        nparams++;
        /* the rows that have it, in table order, against the allOf */
        json_t *have = json_array();
        for (int i = 0; i < n; i++) {
            int pi = sl_param_index(&t[i], key);
            if (pi >= 0) {
                char pw[160];
                snprintf(pw, sizeof pw, "MetricSpec.%s (%s)", key, t[i].name);
                json_t *rs = resolve(v);
                check_param(&t[i].params[pi], rs, pw);
                json_decref(rs);
                json_array_append_new(have, json_string(t[i].name));
            }
        }
        char w[160];
        snprintf(w, sizeof w, "MetricSpec.%s", key);
        SAME(json_array_size(have) > 0, w, "a row with this parameter");
        SAME(json_equal(have, json_object_get(owners, key)), w, "allOf (which metrics take it)");
        json_decref(have);
    }
    /* every row's parameters are in MetricSpec */
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < t[i].nparams; p++) {
            char w[160];
            snprintf(w, sizeof w, "MetricSpec.%s (%s)", t[i].params[p].name, t[i].name);
            SAME(json_object_get(props, t[i].params[p].name) != NULL, w, "presence");
        }
    }
    SAME(json_object_size(owners) == nparams, "MetricSpec.allOf", "the parameters");
    json_decref(owners);
}

/* Runs fn with schemas pointing into the embedded openapi.json (parsed here, freed after). */
static void with_schemas(void (*fn)(void))
{
    size_t len = 0;
    const char *doc = slp_openapi_json(&len);
    json_error_t err;
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "openapi.json is not JSON: %s (line %d)\n", err.text, err.line);
        return;
    }
    schemas = json_object_get(json_object_get(root, "components"), "schemas");
    CHECK(json_is_object(schemas));
    fn();
    schemas = NULL;
    json_decref(root);
}

static void test_losses(void)
{
    with_schemas(test_loss_schemas);
}

static void test_metrics(void)
{
    with_schemas(test_metric_schemas);
    with_schemas(test_metric_aliases);
}

/* ---- the document against the route table ------------------------------------------------- */

/* CHECK(cond) that names the place in the document and what is wrong when it fails. */
#define DOC(cond, where, what)                                                                     \
    do {                                                                                           \
        CHECK(cond);                                                                               \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  openapi.json %s: %s\n", where, what);                               \
        }                                                                                          \
    } while (0)

/* The methods of the route table with their OpenAPI operation names. HEAD is left out: it is
 * GET without the body, and OpenAPI documents it with the GET operation. */
static const struct {
    unsigned bit;
    const char *op;
} route_methods[] = {
    {SRV_GET, "get"},       {SRV_POST, "post"},   {SRV_PUT, "put"},
    {SRV_DELETE, "delete"}, {SRV_PATCH, "patch"},
};

/* The operation names OpenAPI 3.1 allows in a path item (its Path Item Object). */
static const char *const openapi_ops[] = {"get",  "put",   "post",  "delete",
                                          "head", "patch", "trace", "options"};

/* The node that a local JSON pointer reference "#/a/b" names in root (RFC 6901: "~1" is '/',
 * "~0" is '~'; a number indexes an array), borrowed from root; NULL when it names nothing or
 * is not local. */
static json_t *pointer(json_t *root, const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0) {
        return strcmp(ref, "#") == 0 ? root : NULL;
    }
    json_t *node = root;
    const char *p = ref + 2;
    char tok[256];
    while (node) {
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            if (n + 1 >= sizeof tok) {
                return NULL;
            }
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                tok[n++] = p[1] == '1' ? '/' : '~';
                p++;
            } else {
                tok[n++] = *p;
            }
        }
        tok[n] = '\0';
        if (json_is_object(node)) {
            node = json_object_get(node, tok);
        } else if (json_is_array(node)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            node = n > 0 && *end == '\0' ? json_array_get(node, i) : NULL;
        } else {
            node = NULL;
        }
        if (*p == '\0') {
            return node;
        }
        p++; /* the '/' */
    }
    return NULL;
}

/* node, or the node its "$ref" names in root when it is a Reference Object (borrowed). */
static json_t *deref(json_t *root, json_t *node)
{
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    return ref ? pointer(root, ref) : node;
}

/* Writes the JSON pointer where + "/" + key into buf (n bytes), key escaped as RFC 6901 says
 * ('~' as "~0", '/' as "~1"); cut at n - 1 bytes. */
static void pointer_append(char *buf, size_t n, const char *where, const char *key)
{
    size_t len = (size_t)snprintf(buf, n, "%s/", where);
    for (; *key && len + 3 < n; key++) {
        if (*key == '~' || *key == '/') {
            buf[len++] = '~';
            buf[len++] = *key == '~' ? '0' : '1';
        } else {
            buf[len++] = *key;
        }
    }
    if (len < n) {
        buf[len] = '\0';
    }
}

/* Checks every "$ref" under node (at where, a JSON pointer) names a node of root; counts them
 * into *n. */
static void check_refs(json_t *root, json_t *node, const char *where, int *n)
{
    char sub[512];
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v)
        {
            if (strcmp(key, "$ref") == 0 && json_is_string(v)) {
                (*n)++;
                DOC(pointer(root, json_string_value(v)) != NULL, where,
                    "its $ref names nothing in the document");
                if (!pointer(root, json_string_value(v))) {
                    fprintf(stderr, "  (the $ref is %s)\n", json_string_value(v));
                }
                continue;
            }
            pointer_append(sub, sizeof sub, where, key);
            check_refs(root, v, sub, n);
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            snprintf(sub, sizeof sub, "%s/%zu", where, i);
            check_refs(root, v, sub, n);
        }
    }
}

/* Whether the path parameter name is declared (in: path, required: true) among the parameters
 * of a path item and of one of its operations. */
static bool path_param_declared(json_t *root, json_t *item, json_t *op, const char *name)
{
    json_t *lists[2] = {json_object_get(item, "parameters"), json_object_get(op, "parameters")};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[l], i, p)
        {
            json_t *d = deref(root, p);
            const char *in = json_string_value(json_object_get(d, "in"));
            const char *nm = json_string_value(json_object_get(d, "name"));
            if (in && nm && strcmp(in, "path") == 0 && strcmp(nm, name) == 0) {
                return json_is_true(json_object_get(d, "required"));
            }
        }
    }
    return false;
}

/* The number of path parameters (in: path) a path item and its operation op declare. */
static size_t path_params_count(json_t *root, json_t *item, json_t *op)
{
    size_t n = 0;
    json_t *lists[2] = {json_object_get(item, "parameters"), json_object_get(op, "parameters")};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[l], i, p)
        {
            const char *in = json_string_value(json_object_get(deref(root, p), "in"));
            n += in && strcmp(in, "path") == 0;
        }
    }
    return n;
}

/* Checks that operation op of route path declares each "{name}" segment of path as a path
 * parameter, and no other. */
static void check_path_params(json_t *root, json_t *item, json_t *op, const char *path,
                              const char *where)
{
    size_t want = 0;
    for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        char name[64];
        DOC(end != NULL && (size_t)(end - p) < sizeof name, where, "a '{' without its '}'");
        if (!end || (size_t)(end - p) >= sizeof name) {
            return;
        }
        snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
        char w[400];
        snprintf(w, sizeof w, "%s {%s}", where, name);
        DOC(path_param_declared(root, item, op, name), w,
            "not declared as a required path parameter (in: path)");
        want++;
    }
    DOC(path_params_count(root, item, op) == want, where,
        "declares path parameters that are not in the path");
}

/* Runs fn(root) on the embedded openapi.json (parsed here, freed after). */
static void with_doc(void (*fn)(json_t *root))
{
    size_t len = 0;
    const char *doc = slp_openapi_json(&len);
    json_error_t err;
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "openapi.json is not JSON: %s (line %d)\n", err.text, err.line);
        return;
    }
    fn(root);
    json_decref(root);
}

/* Every row of srv_routes is a path of the document with an operation for each of its methods
 * but HEAD (and none for a method the row does not take), each "{name}" of the path declared as
 * a path parameter; and every path of the document is a row. */
static void check_routes(json_t *root)
{
    json_t *paths = json_object_get(root, "paths");
    DOC(json_is_object(paths), "paths", "missing");
    for (size_t r = 0; r < SRV_NROUTES; r++) {
        const struct srv_route *row = &srv_routes[r];
        char where[256];
        snprintf(where, sizeof where, "paths[%s]", row->path);
        json_t *item = json_object_get(paths, row->path);
        DOC(json_is_object(item), where, "missing (the route table has this path)");
        if (!item) {
            continue;
        }
        for (size_t m = 0; m < sizeof route_methods / sizeof route_methods[0]; m++) {
            json_t *op = json_object_get(item, route_methods[m].op);
            char w[300];
            snprintf(w, sizeof w, "%s.%s", where, route_methods[m].op);
            if (row->methods & route_methods[m].bit) {
                DOC(json_is_object(op) && json_is_object(json_object_get(op, "responses")), w,
                    "missing, or without responses (the route takes this method)");
                if (op) {
                    check_path_params(root, item, op, row->path, w);
                }
            } else {
                DOC(op == NULL, w, "documented, but the route does not take this method");
            }
        }
        json_t *head = json_object_get(item, "head");
        DOC(head == NULL || (row->methods & SRV_HEAD), where,
            "documents head, but the route does not take HEAD");
    }
    /* the other way: no path the server does not route */
    const char *key;
    json_t *v;
    json_object_foreach(paths, key, v)
    {
        bool routed = false;
        for (size_t r = 0; r < SRV_NROUTES; r++) {
            routed = routed || strcmp(srv_routes[r].path, key) == 0;
        }
        char where[256];
        snprintf(where, sizeof where, "paths[%s]", key);
        DOC(routed, where, "not a row of the route table (server/route.c)");
        /* only operations and the shared keys of a Path Item Object */
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            bool known = strcmp(k, "parameters") == 0 || strcmp(k, "summary") == 0 ||
                         strcmp(k, "description") == 0 || strcmp(k, "servers") == 0;
            for (size_t o = 0; o < sizeof openapi_ops / sizeof openapi_ops[0]; o++) {
                known = known || strcmp(k, openapi_ops[o]) == 0;
            }
            DOC(known, where, k);
        }
    }
}

/* Every "$ref" of the document names a node of it (no other document is referenced). */
static void check_all_refs(json_t *root)
{
    int n = 0;
    check_refs(root, root, "#", &n);
    DOC(n > 0, "#", "no $ref at all (the walk found nothing to check)");
}

/* Every security requirement names a scheme of components.securitySchemes with the roles
 * "admin" and "participant" only, and every challenge operation says who may call it. */
static void check_security(json_t *root)
{
    json_t *schemes = json_object_get(json_object_get(root, "components"), "securitySchemes");
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(root, "paths"), path, item)
    {
        const char *op_name;
        json_t *op;
        json_object_foreach(item, op_name, op)
        {
            if (!json_is_object(op) || !json_object_get(op, "responses")) {
                continue; /* parameters, summary: not an operation */
            }
            char where[300];
            snprintf(where, sizeof where, "paths[%s].%s", path, op_name);
            json_t *sec = json_object_get(op, "security");
            if (strncmp(path, "/v1/challenges", 14) == 0) {
                DOC(json_array_size(sec) > 0, where, "no security (who may call it)");
                DOC(json_object_get(json_object_get(op, "responses"), "401") != NULL, where,
                    "no 401 answer");
            }
            size_t i;
            json_t *req;
            json_array_foreach(sec, i, req)
            {
                const char *scheme;
                json_t *roles;
                json_object_foreach(req, scheme, roles)
                {
                    DOC(json_object_get(schemes, scheme) != NULL, where,
                        "names a scheme that components.securitySchemes lacks");
                    size_t k;
                    json_t *role;
                    json_array_foreach(roles, k, role)
                    {
                        const char *s = json_string_value(role);
                        DOC(s && (strcmp(s, "admin") == 0 || strcmp(s, "participant") == 0), where,
                            "a role other than admin and participant");
                    }
                }
            }
        }
    }
}

static void test_routes(void)
{
    with_doc(check_routes);
}

static void test_refs(void)
{
    with_doc(check_all_refs);
}

static void test_security(void)
{
    with_doc(check_security);
}

/* ArrayObject's dtype enum lists lib's dtype table, in its order (bfloat16 included). */
static void check_dtypes(json_t *root)
{
    const json_t *sc = json_object_get(json_object_get(root, "components"), "schemas");
    const json_t *e = json_object_get(
        json_object_get(json_object_get(json_object_get(sc, "ArrayObject"), "properties"), "dtype"),
        "enum");
    SAME(json_array_size(e) == (size_t)SL_DT_COUNT, "ArrayObject.dtype", "the number of dtypes");
    for (int k = 0; k < SL_DT_COUNT && (size_t)k < json_array_size(e); k++) {
        const char *s = json_string_value(json_array_get(e, (size_t)k));
        SAME(s && strcmp(s, sl_dtype_name((enum sl_dtype)k)) == 0, "ArrayObject.dtype",
             sl_dtype_name((enum sl_dtype)k));
    }
    CHECK(sl_dtype_name(SL_DT_BF16) && strcmp(sl_dtype_name(SL_DT_BF16), "bfloat16") == 0);
}

static void test_dtypes(void)
{
    with_doc(check_dtypes);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_losses), CHECK_TEST(test_metrics),  CHECK_TEST(test_routes),
    CHECK_TEST(test_refs),   CHECK_TEST(test_security), CHECK_TEST(test_dtypes),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_openapi", tests);
}
