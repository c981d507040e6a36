// segloss - a JavaScript client of seglossd, the segmentation scoring service.
//
// One ES module for Node 18+ and browsers, with no dependencies: the platform's fetch, FormData,
// Blob and CompressionStream. Arrays are typed arrays with a shape (C order), sent as .npy bytes,
// gzip-compressed where CompressionStream exists, base64 inside the JSON body or as the parts
// of a multipart/form-data body:
//
//   import { Client } from "segloss";
//   const client = new Client("http://127.0.0.1:8080");
//   const out = await client.score(
//     { data: new Float32Array([0.5, 0.6, 0.2, 0.1]), shape: [1, 2, 2] },
//     { data: new Uint8Array([1, 1, 0, 0]), shape: [1, 2, 2] },
//     { losses: ["cross_entropy", "dice"], prediction_type: "probabilities" });
//
// An error answer rejects with SeglossError carrying the problem+json detail; 503 and 429
// answers and connection failures are retried with exponential backoff (Retry-After when it is
// longer), a request that got no answer within the timeout is not. The rules are those of the
// Python client (clients/python/segloss.py); the HTTP contract is the service's /openapi.json.

export const VERSION = "0.1.0";
export const DEFAULT_URL = "http://127.0.0.1:8080";
// Client#scoreBatches: requests at once, at most (the CLI's --parallel has the same bound)
export const PARALLEL_MAX = 64;
// Longest wait between two attempts, whatever Retry-After or the backoff say (seconds)
export const MAX_DELAY = 30;
// Health probes answer at once or not at all: they never wait longer than this (seconds)
const PROBE_TIMEOUT = 10;

// dtype -> [.npy descr, typed array constructors that carry it]. bool travels in a Uint8Array
// (values 0 or 1), float16 as its bits in a Uint16Array; the rest follow from the typed array.
const DTYPES = {
    bool: ["|b1", [Uint8Array, Uint8ClampedArray]],
    uint8: ["|u1", [Uint8Array, Uint8ClampedArray]],
    int8: ["|i1", [Int8Array]],
    uint16: ["<u2", [Uint16Array]],
    int16: ["<i2", [Int16Array]],
    uint32: ["<u4", [Uint32Array]],
    int32: ["<i4", [Int32Array]],
    int64: ["<i8", [BigInt64Array]],
    float16: ["<f2", [Uint16Array]],
    float32: ["<f4", [Float32Array]],
    float64: ["<f8", [Float64Array]],
};
export const DTYPE_NAMES = Object.freeze(Object.keys(DTYPES));

// The dtype a typed array carries when none is given
function defaultDtype(data) {
    if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return "uint8";
    if (data instanceof Int8Array) return "int8";
    if (data instanceof Uint16Array) return "uint16";
    if (data instanceof Int16Array) return "int16";
    if (data instanceof Uint32Array) return "uint32";
    if (data instanceof Int32Array) return "int32";
    if (data instanceof BigInt64Array) return "int64";
    if (data instanceof Float32Array) return "float32";
    if (data instanceof Float64Array) return "float64";
    return null;
}

// An error answer of seglossd (or, as SeglossConnectionError, no answer at all). status is the
// HTTP status (null without an answer), detail the problem+json detail naming the wrong key.
export class SeglossError extends Error {
    constructor(status, title, detail, { problem = null, retryAfter = null, requestId = null } = {}) {
        super(status == null ? `${title}: ${detail}` : `${status} ${title}: ${detail}`);
        this.name = "SeglossError";
        this.status = status;
        this.title = title;
        this.detail = detail;
        this.problem = problem;
        this.retryAfter = retryAfter;
        this.requestId = requestId;
    }
}

// seglossd could not be reached (refused, reset), after the retries, or did not answer within
// the timeout. status is null.
export class SeglossConnectionError extends SeglossError {
    constructor(detail) {
        super(null, "cannot reach seglossd", detail);
        this.name = "SeglossConnectionError";
    }
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// An array {data, shape, dtype} checked: data a typed array whose length is the product of
// shape, dtype one the service reads and that data can carry. Returns {data, shape, dtype}.
// Throws TypeError naming `name`.
export function checkArray(value, name = "array") {
    if (value === null || typeof value !== "object" || !ArrayBuffer.isView(value.data)) {
        throw new TypeError(`${name}: an object {data: a typed array, shape: [...]} ` +
            "(Float32Array, Uint8Array, Int32Array, ...)");
    }
    const { data } = value;
    const dtype = value.dtype ?? defaultDtype(data);
    if (!Object.hasOwn(DTYPES, dtype ?? "")) {
        const what = value.dtype ?? data.constructor.name;
        throw new TypeError(`${name}: dtype ${what} is not supported by seglossd (use one of ` +
            `${DTYPE_NAMES.join(", ")}; convert it yourself, the client never changes values)`);
    }
    if (!DTYPES[dtype][1].some((c) => data instanceof c)) {
        throw new TypeError(`${name}: dtype ${dtype} needs a ` +
            `${DTYPES[dtype][1].map((c) => c.name).join(" or ")}, not a ${data.constructor.name}`);
    }
    const shape = value.shape ?? [data.length];
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
        throw new TypeError(`${name}: shape must be a list of non-negative integers`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
        throw new TypeError(`${name}: shape [${shape.join(", ")}] holds ${count} values, ` +
            `data has ${data.length}`);
    }
    if (dtype === "bool") {
        const bad = data.findIndex((v) => v > 1);
        if (bad >= 0) throw new TypeError(`${name}: bool values are 0 or 1, [${bad}] is ${data[bad]}`);
    }
    return { data, shape: shape.slice(), dtype };
}

// The .npy (version 1.0, C order, little-endian) bytes of an array {data, shape, dtype} as a
// new Uint8Array.
export function encodeNpy(value, name = "array") {
    const { data, shape, dtype } = checkArray(value, name);
    const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
    let header = `{'descr': '${DTYPES[dtype][0]}', 'fortran_order': False, 'shape': (${dims}), }`;
    // magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64
    const total = Math.ceil((10 + header.length + 1) / 64) * 64;
    header = header.padEnd(total - 10 - 1, " ") + "\n";
    const out = new Uint8Array(total + data.byteLength);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
    for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
    const size = data.BYTES_PER_ELEMENT;
    if (!littleEndian && size > 1) {
        for (let p = total; p < out.length; p += size) out.subarray(p, p + size).reverse();
    }
    return out;
}

const NPY_TYPES = {
    b1: ["bool", Uint8Array], u1: ["uint8", Uint8Array], i1: ["int8", Int8Array],
    u2: ["uint16", Uint16Array], i2: ["int16", Int16Array], u4: ["uint32", Uint32Array],
    i4: ["int32", Int32Array], i8: ["int64", BigInt64Array], f2: ["float16", Uint16Array],
    f4: ["float32", Float32Array], f8: ["float64", Float64Array],
};

// The array {data, shape, dtype} of .npy bytes (a Uint8Array or ArrayBuffer; versions 1-3,
// C order, a dtype the service uses). The data is a copy. Throws TypeError on anything else.
export function decodeNpy(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
    if (b.length < 10 || magic.some((m, i) => b[i] !== m)) throw new TypeError("not .npy bytes");
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const v1 = b[6] === 1;
    const hlen = v1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
    const start = (v1 ? 10 : 12) + hlen;
    if (start > b.length) throw new TypeError(".npy header runs past the end");
    const header = new TextDecoder().decode(b.subarray(v1 ? 10 : 12, start));
    const descr = /'descr':\s*'([<>|=])([a-z]\d)'/.exec(header);
    const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
    if (!descr || !shape || !Object.hasOwn(NPY_TYPES, descr[2])) {
        throw new TypeError(`.npy header not understood: ${header.trim()}`);
    }
    if (/'fortran_order':\s*True/.test(header)) throw new TypeError(".npy in Fortran order");
    const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s).map(Number);
    const [dtype, Ctor] = NPY_TYPES[descr[2]];
    const count = dims.reduce((a, c) => a * c, 1);
    const nbytes = count * Ctor.BYTES_PER_ELEMENT;
    if (b.length - start !== nbytes) {
        throw new TypeError(`.npy holds ${b.length - start} data bytes, its header says ${nbytes}`);
    }
    const raw = b.slice(start, start + nbytes);
    const big = descr[1] === ">";
    if (big === littleEndian && Ctor.BYTES_PER_ELEMENT > 1) {
        for (let p = 0; p < raw.length; p += Ctor.BYTES_PER_ELEMENT) {
            raw.subarray(p, p + Ctor.BYTES_PER_ELEMENT).reverse();
        }
    }
    return { data: new Ctor(raw.buffer), shape: dims, dtype };
}

// Whether gzip can be done here (CompressionStream, Node 18+ and current browsers)
function haveGzip() {
    return typeof globalThis.CompressionStream === "function";
}

// compression resolved: "auto" is gzip where CompressionStream exists, else none. Throws for
// gzip where there is none and for values the client does not send.
function resolveCompression(compression) {
    if (compression === "auto") return haveGzip() ? "gzip" : "none";
    if (compression === "gzip") {
        if (!haveGzip()) {
            throw new TypeError("compression 'gzip': this platform has no CompressionStream " +
                "(use 'auto' or 'none')");
        }
        return "gzip";
    }
    if (compression === "none") return "none";
    throw new TypeError(`compression: 'gzip', 'none' or 'auto', not ${JSON.stringify(compression)}`);
}

// bytes gzip-compressed when compression is "gzip"; a Promise of a Uint8Array
async function compress(bytes, compression) {
    if (compression !== "gzip") return bytes;
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
}

function base64(bytes) {
    if (typeof globalThis.Buffer === "function") {
        return globalThis.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
            .toString("base64");
    }
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
        s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
}

// A losses/metrics option as the list the API takes: a name becomes {name}
function entries(items, what) {
    if (items == null) return null;
    const list = typeof items === "string" || !Array.isArray(items) ? [items] : items;
    return list.map((item, i) => {
        if (typeof item === "string") return { name: item };
        if (item !== null && typeof item === "object" && !Array.isArray(item)) return item;
        throw new TypeError(`${what}[${i}]: a name or an object, not ${JSON.stringify(item)}`);
    });
}

// Seconds from a Retry-After header (delta-seconds or an HTTP date), or null
function retryAfterSeconds(value) {
    if (!value) return null;
    if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.max(0, Number(value));
    const when = Date.parse(value);
    return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

// The SeglossError of an error answer (problem+json, or whatever the body was)
function problemError(res, text) {
    let problem = null;
    const ctype = (res.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
    if (ctype.endsWith("json")) {
        try {
            const parsed = JSON.parse(text);
            if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
                problem = parsed;
            }
        } catch {
            // not JSON after all: the text is the detail
        }
    }
    const title = problem?.title || res.statusText || "HTTP error";
    const detail = problem?.detail || problem?.error || text.trim().slice(0, 500) || "(no detail)";
    return new SeglossError(res.status, title, detail, {
        problem,
        retryAfter: retryAfterSeconds(res.headers.get("Retry-After")),
        requestId: res.headers.get("X-Request-ID"),
    });
}

// A failure before any answer that the retry loop may repeat
class Retryable extends Error {}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const CLIENT_OPTIONS = new Set(["losses", "metrics", "weight", "instances", "transport",
    "compression", "parallel", "signal"]);

// Under Node the requests say who sends them; a browser sends its own User-Agent
const userAgent = typeof process === "object" && process?.versions?.node
    ? { "User-Agent": `segloss-js/${VERSION} node/${process.versions.node}` } : {};

// The default address: $SEGLOSS_URL under Node, else DEFAULT_URL
function defaultUrl() {
    const env = typeof process === "object" && process?.env ? process.env.SEGLOSS_URL : undefined;
    return env || DEFAULT_URL;
}

// A seglossd at url (default: $SEGLOSS_URL under Node, else http://127.0.0.1:8080).
// timeout: seconds one attempt may take, answer included (not retried when it runs out).
// retries: how many times a request is repeated after a 503 or 429 answer or a connection
// failure; the n-th wait is backoff * 2**(n-1) seconds, or Retry-After when longer, at most 30.
// A Client holds no state between requests and may be shared.
export class Client {
    constructor(url, { timeout = 300, retries = 3, backoff = 0.25 } = {}) {
        this.url = String(url || defaultUrl()).replace(/\/+$/, "");
        let parsed;
        try {
            parsed = new URL(this.url);
        } catch {
            parsed = null;
        }
        if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
            throw new TypeError(`url: ${JSON.stringify(this.url)} is not an http:// or https:// address`);
        }
        for (const [key, v] of [["timeout", timeout], ["retries", retries], ["backoff", backoff]]) {
            if (typeof v !== "number" || !(v >= 0) || (key === "retries" && !Number.isInteger(v))) {
                throw new TypeError(`${key}: a non-negative number, not ${JSON.stringify(v)}`);
            }
        }
        this.timeout = timeout;
        this.retries = retries;
        this.backoff = backoff;
    }

    // Scores a batch: POST /v1/score. Resolves to the parsed JSON answer.
    async score(pred, target, options = {}) {
        const {
            losses = null, metrics = null, weight = null, instances = null,
            transport = "json", compression = "auto", signal,
        } = options;
        if (transport !== "json" && transport !== "multipart") {
            throw new TypeError(`transport: 'json' or 'multipart', not ${JSON.stringify(transport)}`);
        }
        const comp = resolveCompression(compression);
        for (const key of ["prediction", "target"]) {
            if (key in options) throw new TypeError(`${key}: give arrays as score's arguments`);
        }
        const arrays = [["prediction", checkArray(pred, "pred")], ["target", checkArray(target, "target")]];
        if (weight != null) arrays.push(["weight", checkArray(weight, "weight")]);
        if (instances != null) arrays.push(["instances", checkArray(instances, "instances")]);

        const spec = {};
        const parts = [];
        for (const [key, a] of arrays) {
            const bytes = await compress(encodeNpy(a, key), comp);
            const entry = { format: "npy", compression: comp };
            if (transport === "json") {
                entry.data = base64(bytes);
            } else {
                entry.part = key;
                parts.push([key, bytes]);
            }
            spec[key] = entry;
        }
        for (const [key, items] of [["losses", losses], ["metrics", metrics]]) {
            const list = entries(items, key);
            if (list !== null) spec[key] = list;
        }
        for (const [key, v] of Object.entries(options)) {
            if (!CLIENT_OPTIONS.has(key) && v !== undefined) spec[key] = v;
        }
        let body;
        const headers = {};
        if (transport === "json") {
            body = JSON.stringify(spec);
            headers["Content-Type"] = "application/json";
        } else {
            // fetch writes the multipart body and its Content-Type with the boundary
            body = new FormData();
            body.append("spec", new Blob([JSON.stringify(spec)], { type: "application/json" }),
                "spec.json");
            for (const [key, bytes] of parts) {
                body.append(key, new Blob([bytes], { type: "application/octet-stream" }),
                    key + (comp === "gzip" ? ".npy.gz" : ".npy"));
            }
        }
        const res = await this._request("POST", "/v1/score", { body, headers, signal });
        return res.json;
    }

    // Scores a data set batch by batch: one POST /v1/score per batch, `parallel` (1..64) at
    // once. batches: an iterable or async iterable of [pred, target] pairs, read only as far as
    // the requests in flight need. Resolves to the answers in the batches' order. Rejects with
    // the error of the first failing batch in that order (its .batch set to its index), after
    // the requests in flight have ended; later batches are not started.
    async scoreBatches(batches, options = {}) {
        const { parallel = 1, ...rest } = options;
        if (!Number.isInteger(parallel) || parallel < 1 || parallel > PARALLEL_MAX) {
            throw new RangeError(`parallel: an integer 1..${PARALLEL_MAX}, not ${JSON.stringify(parallel)}`);
        }
        for (const key of ["weight", "instances"]) {
            if (rest[key] != null) {
                throw new TypeError(`${key}: one map cannot serve every batch; use score per batch`);
            }
        }
        rest.compression = resolveCompression(rest.compression ?? "auto");
        const iterator = batches?.[Symbol.asyncIterator]?.() ?? batches?.[Symbol.iterator]?.();
        if (!iterator) throw new TypeError("batches: an iterable of [pred, target] pairs");
        const answers = [];
        const pending = [];
        let index = 0;
        let more = true;
        // starts the next batch's request; false when there is none
        const take = async () => {
            const next = await iterator.next();
            if (next.done) return false;
            const i = index++;
            const batch = next.value;
            let promise;
            if (!Array.isArray(batch) || batch.length !== 2) {
                promise = Promise.reject(new TypeError(`batches[${i}]: a [pred, target] pair`));
            } else {
                promise = this.score(batch[0], batch[1], rest);
            }
            promise.catch(() => {}); // handled in order below
            pending.push([i, promise]);
            return true;
        };
        while (more && pending.length < parallel) more = await take();
        while (pending.length) {
            const [i, promise] = pending.shift();
            try {
                answers.push(await promise);
            } catch (e) {
                await Promise.allSettled(pending.map(([, p]) => p));
                if (e !== null && typeof e === "object") e.batch = i;
                throw e;
            }
            if (more) more = await take();
        }
        return answers;
    }

    // The U-Net border weight map of a mask batch: POST /v1/weight-map. Resolves to
    // {data: Float32Array, shape, dtype: "float32"}. Options: instances (an array), compression,
    // and the parameters w0, sigma, class_weights, neighbors, connectivity, spacing.
    async weightMap(target, options = {}) {
        const { instances = null, compression = "auto", signal, ...params } = options;
        const comp = resolveCompression(compression);
        if ("target" in params) throw new TypeError("target: give it as weightMap's argument");
        const body = {};
        for (const [key, value] of [["target", target], ["instances", instances]]) {
            if (value == null) continue;
            const bytes = await compress(encodeNpy(checkArray(value, key), key), comp);
            body[key] = { format: "npy", compression: comp, data: base64(bytes) };
        }
        Object.assign(body, params);
        const res = await this._request("POST", "/v1/weight-map", {
            body: JSON.stringify(body),
            headers: { "Content-Type": "application/json", Accept: "application/x-npy" },
            signal,
            binary: true,
        });
        try {
            return decodeNpy(res.bytes);
        } catch (e) {
            throw new SeglossError(res.status, "bad answer", `not .npy bytes: ${e.message}`);
        }
    }

    // Every loss and metric with its parameters: GET /v1/catalog, parsed
    async catalog() {
        return (await this._request("GET", "/v1/catalog")).json;
    }

    // Whether the server process runs (GET /healthz answers 200). One attempt, at most 10 s.
    async healthy() {
        return this._probe("/healthz");
    }

    // Whether the server accepts work (GET /readyz answers 200; 503 while draining or while
    // its compute queue is full). One attempt, at most 10 s.
    async ready() {
        return this._probe("/readyz");
    }

    async _probe(path) {
        try {
            await this._request("GET", path, { retries: 0, timeout: Math.min(this.timeout, PROBE_TIMEOUT) });
            return true;
        } catch (e) {
            if (e instanceof SeglossError) return false;
            throw e;
        }
    }

    // One attempt: resolves to {status, res, text | bytes} of any answer; rejects with
    // Retryable for a failure before an answer, SeglossConnectionError on
    // the timeout. A caller's signal that aborts rejects with its reason.
    async _once(method, path, { body, headers, signal, timeout, binary }) {
        const controller = new AbortController();
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            controller.abort();
        }, timeout * 1000);
        const onAbort = () => controller.abort();
        if (signal) {
            if (signal.aborted) controller.abort();
            else signal.addEventListener("abort", onAbort, { once: true });
        }
        const where = `${method} ${this.url}${path}`;
        try {
            const res = await fetch(this.url + path, {
                method, body, signal: controller.signal,
                headers: { ...userAgent, ...headers },
            });
            const ok = res.status >= 200 && res.status < 300;
            const out = { status: res.status, res };
            if (ok && binary) out.bytes = new Uint8Array(await res.arrayBuffer());
            else out.text = await res.text();
            return out;
        } catch (e) {
            if (signal?.aborted) throw signal.reason ?? e;
            if (timedOut) throw new SeglossConnectionError(`${where}: no answer within ${timeout} s`);
            // fetch's TypeError: refused, reset, closed before a whole answer. Every request of
            // this client is safe to repeat (scoring is a pure function).
            const cause = e?.cause?.code || e?.cause?.message || e?.message || String(e);
            throw new Retryable(`${where}: ${cause}`);
        } finally {
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
        }
    }

    // Sends the request with the retries (503/429 answers, connection failures); resolves to
    // {status, json | bytes} of a 2xx answer or rejects with SeglossError.
    async _request(method, path, { body, headers = {}, signal, retries, timeout, binary = false } = {}) {
        retries = retries ?? this.retries;
        timeout = timeout ?? this.timeout;
        for (let attempt = 0; ; attempt++) {
            let delay = Math.min(this.backoff * 2 ** attempt, MAX_DELAY);
            let answer;
            try {
                answer = await this._once(method, path, { body, headers, signal, timeout, binary });
            } catch (e) {
                if (!(e instanceof Retryable)) throw e;
                if (attempt >= retries) {
                    const tries = attempt + 1;
                    throw new SeglossConnectionError(`${e.message} (after ${tries} attempt${tries > 1 ? "s" : ""})`);
                }
            }
            if (answer) {
                if (answer.status >= 200 && answer.status < 300) {
                    if (binary) return { status: answer.status, bytes: answer.bytes };
                    try {
                        return { status: answer.status, json: JSON.parse(answer.text) };
                    } catch (e) {
                        throw new SeglossError(answer.status, "bad answer", `not JSON: ${e.message}`);
                    }
                }
                const error = problemError(answer.res, answer.text);
                if ((answer.status !== 429 && answer.status !== 503) || attempt >= retries) throw error;
                if (error.retryAfter !== null) delay = Math.min(Math.max(delay, error.retryAfter), MAX_DELAY);
            }
            await sleep(delay);
        }
    }
}

// new Client(options.url).score(pred, target, options): one batch with the default timeout and
// retries
export function score(pred, target, options = {}) {
    const { url, ...rest } = options;
    return new Client(url).score(pred, target, rest);
}

// new Client(options.url).weightMap(target, options)
export function weightMap(target, options = {}) {
    const { url, ...rest } = options;
    return new Client(url).weightMap(target, rest);
}
