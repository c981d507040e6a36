// harness.mjs - what the JavaScript client's tests share: a seglossd on an ephemeral loopback
// port, the golden cases as client arrays, the golden tolerance comparison and tests/filter.h's
// selection rule. Node's standard library only.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { decodeNpy } from "../../../clients/js/segloss.js";

export const SEGLOSSD = process.env.SEGLOSS_SEGLOSSD || "build/seglossd";
export const GOLDEN = process.env.SEGLOSS_GOLDEN || "tests/golden/cases";

// Whether the test named name runs: alternatives separated by ','; one with * ? [ matches the
// whole name (as a glob), any other is a substring of it. No SEGLOSS_TEST selects everything.
export function selected(name) {
    const pattern = process.env.SEGLOSS_TEST || "";
    if (!pattern) return true;
    return pattern.split(",").some((alt) => {
        if (!alt) return false;
        if (!/[*?[]/.test(alt)) return name.includes(alt);
        const re = alt.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")
            .replace(/\[!/g, "[^");
        return new RegExp(`^${re}$`).test(name);
    });
}

// A seglossd started with --port 0 and the extra flags; resolves to {url, stop()}
export function startServer(...args) {
    return new Promise((resolve, reject) => {
        const proc = spawn(SEGLOSSD, ["--port", "0", "--access-log", "0", ...args],
            { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        const timer = setTimeout(() => {
            proc.kill("SIGKILL");
            reject(new Error(`seglossd did not start: ${err}`));
        }, 30000);
        proc.stderr.on("data", (d) => { err += d; });
        proc.stdout.on("data", (d) => {
            out += d;
            const m = /^seglossd listening on (\S+)$/m.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({
                    url: m[1],
                    stop: () => new Promise((done) => {
                        if (proc.exitCode !== null) return done();
                        proc.once("exit", done);
                        proc.kill("SIGTERM");
                    }),
                });
            }
        });
        proc.once("error", (e) => { clearTimeout(timer); reject(e); });
        proc.once("exit", (code) => { clearTimeout(timer); reject(new Error(`seglossd exited ${code}: ${err}`)); });
    });
}

// The value of one /metrics series (exact name with labels), asked from 127.0.0.2 (another
// address than the client's, so --max-per-ip does not count it); 0 when absent
export function metric(url, series) {
    return new Promise((resolve, reject) => {
        http.get(url + "/metrics", { localAddress: "127.0.0.2" }, (res) => {
            let text = "";
            res.on("data", (d) => { text += d; });
            res.on("end", () => {
                const line = text.split("\n").find((l) => l.startsWith(series + " "));
                resolve(line ? Number(line.split(" ").pop()) : 0);
            });
        }).on("error", reject);
    });
}

// Every golden case (parsed), sorted by file name
export function goldenCases() {
    return readdirSync(GOLDEN).filter((f) => f.endsWith(".json")).sort()
        .map((f) => JSON.parse(readFileSync(path.join(GOLDEN, f), "utf8")));
}

const CTORS = {
    bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
    uint32: Uint32Array, int32: Int32Array, int64: BigInt64Array, float32: Float32Array,
    float64: Float64Array,
};

function inflate(raw, compression) {
    switch (compression ?? "none") {
    case "none": return raw;
    case "gzip": return zlib.gunzipSync(raw);
    case "zlib": return zlib.inflateSync(raw);
    case "deflate": return zlib.inflateRawSync(raw);
    case "auto": return raw[0] === 0x1f ? zlib.gunzipSync(raw) : zlib.inflateSync(raw);
    default: throw new Error(`compression ${compression}`);
    }
}

function nestedShape(data) {
    const shape = [];
    for (let d = data; Array.isArray(d); d = d[0]) shape.push(d.length);
    return shape;
}

// A golden array (list, npy, raw; a plain JSON list) as a client array {data, shape, dtype},
// or null for the forms a typed array does not carry (rle, coco_rle, Fortran-order .npy) or
// bytes that do not decode (the err_ cases about encodings)
export function toArray(arr) {
    try {
        if (Array.isArray(arr)) arr = { format: "list", data: arr };
        const fmt = arr.format ?? "list";
        const dtype = arr.dtype ?? "float64";
        if (fmt === "list") {
            const shape = arr.shape ?? nestedShape(arr.data);
            const flat = arr.data.flat(Infinity);
            const Ctor = CTORS[dtype];
            const data = Ctor === BigInt64Array ? BigInt64Array.from(flat, BigInt) : Ctor.from(flat);
            return { data, shape, dtype };
        }
        if ((fmt === "npy" || fmt === "raw") && typeof arr.data === "string") {
            const raw = inflate(Buffer.from(arr.data, "base64"), arr.compression);
            if (fmt === "npy") return decodeNpy(new Uint8Array(raw));
            const Ctor = CTORS[dtype];
            const bytes = new Uint8Array(raw); // a copy, aligned
            if (bytes.length !== arr.shape.reduce((a, b) => a * b, 1) * Ctor.BYTES_PER_ELEMENT) return null;
            return { data: new Ctor(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)), shape: arr.shape, dtype };
        }
    } catch {
        return null;
    }
    return null;
}

export const ARRAYS = ["prediction", "target", "weight", "instances"];

// [pred, target, options for Client#score] of a /v1/score golden case, or null when an array
// does not decode
export function caseArgs(c) {
    const req = c.request;
    const pred = toArray(req.prediction);
    const target = toArray(req.target);
    if (!pred || !target) return null;
    const options = {};
    for (const [k, v] of Object.entries(req)) if (!ARRAYS.includes(k)) options[k] = v;
    for (const key of ["weight", "instances"]) {
        if (req[key] != null) {
            options[key] = toArray(req[key]);
            if (!options[key]) return null;
        }
    }
    return [pred, target, options];
}

export function tolerances(c) {
    return [c.rtol ?? 1e-5, c.atol ?? 1e-6];
}

// The golden expect without its status
export function expected(c) {
    const { status, ...rest } = c.expect;
    return rest;
}

// The first place where got and want differ the golden way (|got - want| <= atol + rtol|want|,
// null is null, only want's keys), or null when they match
export function mismatch(got, want, rtol, atol, where = "") {
    if (want === null) return got === null ? null : `${where}: got ${JSON.stringify(got)}, want null`;
    if (typeof want === "boolean" || typeof want === "string") {
        return got === want ? null : `${where}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
    }
    if (typeof want === "number") {
        const ok = typeof got === "number" && Math.abs(got - want) <= atol + rtol * Math.abs(want);
        return ok ? null : `${where}: got ${JSON.stringify(got)}, want ${want}`;
    }
    if (Array.isArray(want)) {
        if (!Array.isArray(got) || got.length !== want.length) {
            return `${where}: got ${JSON.stringify(got)?.slice(0, 200)}, want ${want.length} values`;
        }
        for (let i = 0; i < want.length; i++) {
            const m = mismatch(got[i], want[i], rtol, atol, `${where}[${i}]`);
            if (m) return m;
        }
        return null;
    }
    if (got === null || typeof got !== "object") return `${where}: got ${JSON.stringify(got)}, want an object`;
    for (const [k, v] of Object.entries(want)) {
        if (!(k in got)) return `${where}.${k}: missing`;
        const m = mismatch(got[k], v, rtol, atol, `${where}.${k}`);
        if (m) return m;
    }
    return null;
}

// An answer without elapsed_ms (the server's timing), for comparing two runs
export function steady(answer) {
    const { elapsed_ms: _, ...rest } = answer;
    return rest;
}
