// client.test.mjs - the JavaScript client (clients/js/segloss.js) against a live seglossd on an
// ephemeral port: the golden cases (values at their tolerances), their error cases
// (problem+json detail), 503/429 retried, multipart equal to JSON, gzip on and off, the .npy
// bytes against a header written out here, connection failures and timeouts.
// Run: SEGLOSS_SEGLOSSD=build/seglossd SEGLOSS_GOLDEN=tests/golden/cases node --test tests/clients/js/
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, test as nodeTest } from "node:test";
import {
    Client, SeglossConnectionError, SeglossError, decodeNpy, encodeNpy, score,
} from "../../../clients/js/segloss.js";
import {
    caseArgs, expected, goldenCases, metric, mismatch, selected, startServer, steady, tolerances,
    toArray,
} from "./harness.mjs";

let registered = 0;
const test = (name, fn) => {
    if (selected(`js/${name}`)) {
        registered++;
        nodeTest(`js/${name}`, fn);
    }
};
const cases = goldenCases();
const byId = Object.fromEntries(cases.map((c) => [c.id, c]));
let server;
let client;


const scoreCases = cases.filter((c) => c.expect.status === 200 && !("weight_map" in c.expect)
    && caseArgs(c) !== null);

test("golden cases decode", () => {
    assert.ok(scoreCases.length >= 40, `${scoreCases.length} golden /v1/score cases decode`);
});

for (const c of scoreCases) {
    test(`golden/${c.id}`, async () => {
        const [pred, target, options] = caseArgs(c);
        const [rtol, atol] = tolerances(c);
        for (const transport of ["json", "multipart"]) {
            const got = await client.score(pred, target, { ...options, transport });
            const m = mismatch(got, expected(c), rtol, atol);
            assert.equal(m, null, `${transport}: ${m}`);
        }
    });
}

for (const c of cases.filter((c) => "weight_map" in c.expect)) {
    test(`golden/${c.id}`, async () => {
        const req = c.request;
        const params = Object.fromEntries(Object.entries(req)
            .filter(([k]) => !["target", "instances"].includes(k)));
        if (req.instances != null) params.instances = toArray(req.instances);
        const w = await client.weightMap(toArray(req.target), params);
        const want = c.expect.weight_map;
        const [rtol, atol] = tolerances(c);
        assert.ok(w.data instanceof Float32Array && w.dtype === "float32");
        assert.deepEqual(w.shape, want.shape);
        assert.equal(mismatch(Array.from(w.data), want.data, rtol, atol), null);
    });
}

const errorCases = cases.filter((c) => c.expect.status !== 200 && caseArgs(c) !== null);

test("golden error cases: status, title and problem+json detail", async () => {
    assert.ok(errorCases.length >= 5, `${errorCases.length} error cases decode`);
    assert.ok(errorCases.some((c) => c.id === "err_bad_param"));
    for (const c of errorCases) {
        const [pred, target, options] = caseArgs(c);
        for (const transport of ["json", "multipart"]) {
            const what = `${c.id} (${transport})`;
            const e = await client.score(pred, target, { ...options, transport }).then(() => null, (x) => x);
            assert.ok(e instanceof SeglossError && !(e instanceof SeglossConnectionError), `${what}: ${e}`);
            assert.equal(e.status, c.expect.status, what);
            assert.ok(typeof e.detail === "string" && e.detail.trim(), `${what}: a detail`);
            assert.equal(e.problem?.status, c.expect.status, `${what}: the problem+json body`);
            assert.ok(e.message.startsWith(`${c.expect.status} `) && e.message.includes(e.detail), what);
            if (c.id === "err_bad_param") assert.match(e.detail, /losses\[0\]\.gamma/, what);
        }
    }
});

test("a 422 is sent once, not retried", async () => {
    const [pred, target, options] = caseArgs(byId.err_unknown_loss);
    const series = 'segloss_requests_total{route="/v1/score",status="422"}';
    const before = await metric(server.url, series);
    const e = await new Client(server.url, { retries: 3, backoff: 0.01 })
        .score(pred, target, options).then(() => null, (x) => x);
    assert.equal(e?.status, 422);
    assert.equal(await metric(server.url, series) - before, 1);
});

test("client-side checks name the argument", async () => {
    const pred = { data: new Float32Array(4), shape: [1, 2, 2] };
    const mask = { data: new Uint8Array(4), shape: [1, 2, 2] };
    await assert.rejects(client.score({ data: new Float32Array(3), shape: [1, 2, 2] }, mask),
        /pred: shape \[1, 2, 2\] holds 4 values, data has 3/);
    await assert.rejects(client.score(pred, { data: new BigUint64Array(4), shape: [1, 2, 2] }),
        /target: dtype BigUint64Array is not supported/);
    await assert.rejects(client.score(pred, { data: [1, 0, 1, 0], shape: [1, 2, 2] }), /target: an object/);
    await assert.rejects(client.score(pred, { data: new Uint8Array([0, 2, 1, 0]), shape: [1, 2, 2], dtype: "bool" }),
        /target: bool values are 0 or 1, \[1\] is 2/);
    await assert.rejects(client.score(pred, mask, { transport: "xml" }), /transport/);
    await assert.rejects(client.score(pred, mask, { compression: "zstd" }), /compression/);
    await assert.rejects(client.scoreBatches([], { parallel: 0 }), /parallel: an integer 1\.\.64/);
    await assert.rejects(client.scoreBatches([], { weight: pred }), /weight: one map/);
    assert.throws(() => new Client("ftp://x"), /not an http/);
});

// .npy bytes written out by hand from the format's description (numpy's NEP 1): magic, version
// 1.0, little-endian header length, the dict padded with spaces to a multiple of 64, '\n'
test("encodeNpy: the header and bytes of the .npy format", () => {
    const got = encodeNpy({ data: new Float32Array([1.5, -2, 0, 1, 2, 3]), shape: [2, 3] });
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    // 10 + 60 + 1 bytes round up to 128: 118 header bytes, the data from offset 128
    const header = dict + " ".repeat(128 - 10 - dict.length - 1) + "\n";
    assert.equal(got.length, 128 + 24);
    assert.deepEqual(Array.from(got.subarray(0, 10)), [0x93, 78, 85, 77, 80, 89, 1, 0, 118, 0]);
    assert.equal(Buffer.from(got.subarray(10, 128)).toString("latin1"), header);
    assert.deepEqual(Array.from(got.subarray(128, 136)), [0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]); // 1.5, -2
    const one = Buffer.from(encodeNpy({ data: new Uint8Array([1, 0, 1]), dtype: "bool" })).toString("latin1");
    assert.ok(one.includes("'descr': '|b1'") && one.includes("'shape': (3,)"), one);
    const i8 = Buffer.from(encodeNpy({ data: new BigInt64Array([-1n]), shape: [1, 1] }));
    assert.ok(i8.toString("latin1").includes("'descr': '<i8'"));
    assert.deepEqual(Array.from(i8.subarray(i8.length - 8)), [255, 255, 255, 255, 255, 255, 255, 255]);
    // a view into a larger buffer sends its own bytes only
    const view = new Int16Array([7, 8, 9, 10]).subarray(1, 3);
    const v = encodeNpy({ data: view });
    assert.deepEqual(Array.from(v.subarray(v.length - 4)), [8, 0, 9, 0]);
    assert.equal(v.length % 64, 4, "the data starts at a multiple of 64");
    const back = decodeNpy(got);
    assert.deepEqual([back.dtype, back.shape, Array.from(back.data)], ["float32", [2, 3], [1.5, -2, 0, 1, 2, 3]]);
});

// The same values in every integer dtype the service reads score as the golden case says
test("other dtypes of the golden target score the same", async () => {
    const c = byId.dice_smooth1;
    const [pred, target, options] = caseArgs(c);
    const [rtol, atol] = tolerances(c);
    const values = Array.from(target.data);
    const forms = [
        { data: Int8Array.from(values) }, { data: Uint16Array.from(values) },
        { data: Int16Array.from(values) }, { data: Uint32Array.from(values) },
        { data: Int32Array.from(values) }, { data: BigInt64Array.from(values, BigInt) },
        { data: Float32Array.from(values) }, { data: Float64Array.from(values) },
        { data: Uint8Array.from(values), dtype: "bool" },
        { data: Uint8ClampedArray.from(values) },
    ];
    for (const f of forms) {
        const got = await client.score(pred, { ...f, shape: target.shape }, options);
        assert.equal(mismatch(got, expected(c), rtol, atol), null, f.data.constructor.name + (f.dtype ?? ""));
    }
    // float16: 1.0 is 0x3c00, 0.0 is 0; prediction as float64 too
    const half = { data: Uint16Array.from(values, (v) => (v ? 0x3c00 : 0)), shape: target.shape, dtype: "float16" };
    const pred64 = { data: Float64Array.from(pred.data), shape: pred.shape };
    const got = await client.score(pred64, half, options);
    assert.equal(mismatch(got, expected(c), rtol, atol), null);
});

test("multipart and JSON answers are equal, gzip or not", async () => {
    for (const id of ["mc_dice_metric", "surface_metrics", "dwce_unet", "focal_tversky_batch"]) {
        const [pred, target, options] = caseArgs(byId[id]);
        const answers = [];
        for (const transport of ["json", "multipart"]) {
            for (const compression of ["gzip", "none", "auto"]) {
                answers.push(steady(await client.score(pred, target, { ...options, transport, compression })));
            }
        }
        for (const a of answers.slice(1)) assert.deepEqual(a, answers[0], id);
    }
});

// A loopback HTTP server that answers {} and keeps the requests it got
async function capture(fn) {
    const got = [];
    const srv = http.createServer((req, res) => {
        const chunks = [];
        req.on("data", (d) => chunks.push(d));
        req.on("end", () => {
            got.push({ headers: req.headers, body: Buffer.concat(chunks) });
            res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
        });
    });
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    try {
        await fn(`http://127.0.0.1:${srv.address().port}`);
    } finally {
        await new Promise((r) => srv.close(r));
    }
    return got;
}

test("gzip on and off on the wire; without CompressionStream auto sends none", async () => {
    const pred = { data: new Float32Array([0.5, 0.6, 0.2, 0.1]), shape: [1, 2, 2] };
    const mask = { data: new Uint8Array([1, 1, 0, 0]), shape: [1, 2, 2] };
    const saved = globalThis.CompressionStream;
    const reqs = await capture(async (url) => {
        const c = new Client(url);
        await c.score(pred, mask, { compression: "gzip" });
        await c.score(pred, mask, { compression: "none" });
        await c.score(pred, mask, { transport: "multipart" }); // auto: gzip here
        try {
            globalThis.CompressionStream = undefined;
            await c.score(pred, mask); // auto: none
            await assert.rejects(c.score(pred, mask, { compression: "gzip" }), /no CompressionStream/);
        } finally {
            globalThis.CompressionStream = saved;
        }
    });
    assert.equal(reqs.length, 4);
    const entry = (r) => JSON.parse(r.body.toString()).prediction;
    const first = (r) => Buffer.from(entry(r).data, "base64").subarray(0, 2);
    assert.equal(entry(reqs[0]).compression, "gzip");
    assert.deepEqual(Array.from(first(reqs[0])), [0x1f, 0x8b]);
    assert.equal(entry(reqs[1]).compression, "none");
    assert.deepEqual(Array.from(first(reqs[1])), [0x93, 0x4e]);
    assert.match(reqs[2].headers["content-type"], /^multipart\/form-data; boundary=/);
    const body = reqs[2].body.toString("latin1");
    assert.ok(body.includes('name="spec"') && body.includes('"part":"prediction"') && body.includes("\x1f\x8b"), body.slice(0, 300));
    assert.equal(entry(reqs[3]).compression, "none");
    assert.deepEqual(Array.from(first(reqs[3])), [0x93, 0x4e]);
    assert.equal(reqs[0].headers["content-type"], "application/json");
    assert.match(reqs[0].headers["user-agent"], /^segloss-js\//);
});

// A loopback port that is not seglossd: counts connections and resets them ("reset") or holds
// them without a word ("silent")
async function listener(mode, fn) {
    const held = [];
    let accepted = 0;
    const srv = net.createServer((sock) => {
        accepted++;
        if (mode === "reset") sock.resetAndDestroy ? sock.resetAndDestroy() : sock.destroy();
        else held.push(sock);
    });
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    try {
        await fn(`http://127.0.0.1:${srv.address().port}`);
    } finally {
        held.forEach((s) => s.destroy());
        await new Promise((r) => srv.close(r));
    }
    return accepted;
}

test("connection failures are retried, then SeglossConnectionError; timeouts are not", async () => {
    const pred = { data: new Float32Array(4), shape: [1, 2, 2] };
    const n = await listener("reset", async (url) => {
        const e = await new Client(url, { retries: 2, backoff: 0.01 }).score(pred, pred).then(() => null, (x) => x);
        assert.ok(e instanceof SeglossConnectionError && e.status === null, String(e));
        assert.match(e.message, /after 3 attempts/);
    });
    assert.equal(n, 3, "the reset connection was tried 1 + 2 times");
    const m = await listener("silent", async (url) => {
        const t0 = Date.now();
        const e = await new Client(url, { timeout: 0.3, retries: 3 }).score(pred, pred).then(() => null, (x) => x);
        assert.ok(e instanceof SeglossConnectionError, String(e));
        assert.match(e.message, /no answer within 0\.3 s/);
        assert.ok(Date.now() - t0 < 2000);
    });
    assert.equal(m, 1, "a timed-out request is sent once");
    // nothing listening: refused
    const srv = net.createServer();
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    const port = srv.address().port;
    await new Promise((r) => srv.close(r));
    const dead = new Client(`http://127.0.0.1:${port}`, { retries: 1, backoff: 0.01 });
    assert.equal(await dead.healthy(), false);
    await assert.rejects(dead.catalog(), (e) => e instanceof SeglossConnectionError && /after 2 attempts/.test(e.message));
    assert.equal(await client.healthy(), true);
    assert.equal(await client.ready(), true);
    const cat = await client.catalog();
    assert.ok(Array.isArray(cat.losses) || typeof cat.losses === "object");
});

test("429 with Retry-After: raised with retries 0, retried to success", async () => {
    const lim = await startServer("--max-per-ip", "1");
    const hold = net.connect(Number(new URL(lim.url).port), "127.0.0.1");
    try {
        await new Promise((r) => hold.once("connect", r));
        await new Promise((r) => setTimeout(r, 100)); // the server has counted it
        const c = byId.dice_smooth1;
        const [pred, target, options] = caseArgs(c);
        const e = await new Client(lim.url, { retries: 0 }).score(pred, target, options).then(() => null, (x) => x);
        assert.ok(e instanceof SeglossError && e.status === 429, String(e));
        assert.ok(e.retryAfter !== null && e.retryAfter >= 0, `retryAfter ${e.retryAfter}`);
        assert.ok(e.detail.length > 0);
        const series = 'segloss_rejections_total{reason="per_ip_limit"}';
        const r0 = await metric(lim.url, series);
        setTimeout(() => hold.destroy(), 400);
        const got = await new Client(lim.url, { retries: 20, backoff: 0.05 }).score(pred, target, options);
        const [rtol, atol] = tolerances(c);
        assert.equal(mismatch(got, expected(c), rtol, atol), null);
        assert.ok(await metric(lim.url, series) > r0, "the server refused before it answered");
    } finally {
        hold.destroy();
        await lim.stop();
    }
});

test("503 from a full compute queue is retried to success", async () => {
    // one worker, a queue of one: two slow requests fill them, the next gets 503 + Retry-After
    const sat = await startServer("--threads", "1", "--queue", "1");
    const slow = {
        prediction: { format: "rle", shape: [8, 2048, 2048], data: Array(2).fill(["1 1000 2000000 3000", "5 100 3000000 7000", "9 9", "70000 5000"]).flat() },
        prediction_type: "labels",
        target: { format: "rle", shape: [8, 2048, 2048], data: Array(2).fill(["1 1000 2000000 3000 4000000 500", "50 1000", "9 20", "60000 9000"]).flat() },
        metrics: ["hausdorff", { name: "hausdorff", percentile: 95, as: "hd95" }, "assd", "nsd"],
    };
    try {
        const post = () => fetch(sat.url + "/v1/score", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(slow) }).then((r) => r.status);
        const waitFor = async (series) => {
            for (let i = 0; i < 2000 && await metric(sat.url, series) !== 1; i++) await new Promise((r) => setTimeout(r, 5));
        };
        const s1 = post();
        await waitFor("segloss_workers_busy");
        const s2 = post();
        await waitFor("segloss_queue_depth");
        const c = byId.dice_smooth1;
        const [pred, target, options] = caseArgs(c);
        const full = 'segloss_rejections_total{reason="queue_full"}';
        const q0 = await metric(sat.url, full);
        const e = await new Client(sat.url, { retries: 0 }).score(pred, target, options).then(() => null, (x) => x);
        assert.ok(e instanceof SeglossError && e.status === 503, String(e));
        assert.ok(e.retryAfter !== null, "Retry-After");
        assert.equal(await new Client(sat.url).ready(), false, "ready() while the queue is full");
        const got = await new Client(sat.url, { retries: 10, backoff: 0.05 }).score(pred, target, options);
        const [rtol, atol] = tolerances(c);
        assert.equal(mismatch(got, expected(c), rtol, atol), null);
        assert.ok(await metric(sat.url, full) - q0 >= 1);
        assert.deepEqual(await Promise.all([s1, s2]), [200, 200]);
    } finally {
        await sat.stop();
    }
});

// Whether a loss spec pools the whole batch (a batch of one image is another question)
function poolingLoss(spec) {
    const name = spec.name;
    if (name === "combo") return (spec.terms ?? []).some(poolingLoss);
    if (["dice", "jaccard", "tversky", "generalized_dice", "lovasz_hinge"].includes(name)) return spec.per_image === false;
    if (name === "mcc" || name === "lovasz_softmax") return spec.per_image !== true;
    if (name === "balanced_cross_entropy") return spec.beta === "auto";
    return false;
}

test("scoreBatches: per-image golden values, in order, parallel or not", async () => {
    let used = 0;
    for (const c of scoreCases) {
        const [pred, target, options] = caseArgs(c);
        const n = pred.shape[0];
        if (n < 2 || options.weight || options.instances) continue;
        if ((options.losses ?? []).some((l) => typeof l === "object" && poolingLoss(l))) continue;
        const slice = (a, i) => {
            const per = a.data.length / n;
            return { data: a.data.slice(i * per, (i + 1) * per), shape: [1, ...a.shape.slice(1)], dtype: a.dtype };
        };
        const batches = Array.from({ length: n }, (_, i) => [slice(pred, i), slice(target, i)]);
        async function* lazily() { yield* batches; }
        const one = await client.scoreBatches(batches, { ...options, parallel: 1 });
        const par = await client.scoreBatches(lazily(), { ...options, parallel: 4 });
        assert.deepEqual(par.map(steady), one.map(steady), c.id);
        const [rtol, atol] = tolerances(c);
        for (const sec of ["losses", "metrics"]) {
            for (const [key, entry] of Object.entries(expected(c)[sec] ?? {})) {
                const want = entry?.per_image;
                if (!Array.isArray(want) || want.length !== n) continue;
                const got = par.map((a) => a[sec][key].per_image[0]);
                assert.equal(mismatch(got, want, rtol, atol, `${c.id} ${sec}.${key}`), null);
                used++;
            }
        }
    }
    assert.ok(used >= 8, `${used} per-image golden series checked`);
});

test("scoreBatches: the first failing batch's error, later batches not started", async () => {
    const good = [{ data: new Float32Array([0.5, 0.6, 0.2, 0.1]), shape: [1, 2, 2] }, { data: new Uint8Array([1, 1, 0, 0]), shape: [1, 2, 2] }];
    const bad = [good[0], { data: new Uint8Array([1, 7, 0, 0]), shape: [1, 2, 2] }]; // label 7: 422
    let read = 0;
    function* batches() {
        for (const b of [good, good, bad, good, good, good, good, good]) {
            read++;
            yield b;
        }
    }
    const e = await client.scoreBatches(batches(), { parallel: 2, prediction_type: "probabilities" }).then(() => null, (x) => x);
    assert.ok(e instanceof SeglossError && e.status === 422 && e.batch === 2, String(e));
    assert.ok(read <= 5, `${read} batches read`);
    const answers = await client.scoreBatches([good, good, good], { parallel: 3, metrics: ["dice"], prediction_type: "probabilities" });
    assert.deepEqual(answers.map((a) => a.metrics.dice.mean), [1, 1, 1]);
});

test("module function score and $SEGLOSS_URL", async () => {
    const pred = { data: new Float32Array([0.5, 0.6, 0.2, 0.1]), shape: [1, 2, 2] };
    const mask = { data: new Uint8Array([1, 1, 0, 0]), shape: [1, 2, 2] };
    // CE of p = .5, .6 (mask 1) and .2, .1 (mask 0), plus the soft Dice loss 1 - 2*1.1/(1.4+2)
    const ce = -(Math.log(0.5) + Math.log(0.6) + Math.log(0.8) + Math.log(0.9)) / 4;
    const want = ce + 1 - 2.2 / 3.4;
    const out = await score(pred, mask, { url: server.url, losses: ["cross_entropy", "dice"], prediction_type: "probabilities" });
    assert.ok(Math.abs(out.losses.cross_entropy.value + out.losses.dice.value - want) < 1e-6);
    const saved = process.env.SEGLOSS_URL;
    process.env.SEGLOSS_URL = server.url;
    try {
        assert.equal(new Client().url, server.url);
    } finally {
        if (saved === undefined) delete process.env.SEGLOSS_URL;
        else process.env.SEGLOSS_URL = saved;
    }
});

// the server only when a test is selected (hooks without tests would keep it running)
if (registered) {
    before(async () => {
        server = await startServer();
        client = new Client(server.url);
    });
    after(async () => server && server.stop());
}

test("without Buffer (a browser) the body is the same; an aborted signal rejects with its reason", async () => {
    const pred = { data: Float32Array.from({ length: 70000 }, (_, i) => Math.sin(i)), shape: [1, 200, 350] };
    const mask = { data: Uint8Array.from({ length: 70000 }, (_, i) => i % 3 === 0), shape: [1, 200, 350] };
    const saved = globalThis.Buffer;
    const reqs = await capture(async (url) => {
        const c = new Client(url);
        await c.score(pred, mask, { compression: "none" });
        // base64 through btoa, as in a browser: no Buffer while the body is made; Node's own
        // fetch needs it back
        const realFetch = globalThis.fetch;
        try {
            globalThis.Buffer = undefined;
            globalThis.fetch = (...args) => {
                globalThis.Buffer = saved;
                return realFetch(...args);
            };
            await c.score(pred, mask, { compression: "none" });
        } finally {
            globalThis.Buffer = saved;
            globalThis.fetch = realFetch;
        }
    });
    assert.equal(reqs.length, 2);
    assert.ok(reqs[0].body.equals(reqs[1].body), "the same JSON body");
    const ctl = new AbortController();
    ctl.abort(new Error("stopped here"));
    await assert.rejects(client.score(pred, mask, { signal: ctl.signal }), /stopped here/);
});
