// pack.test.mjs - the package as a user gets it: `npm pack` in clients/js, the tarball
// installed with `npm install --offline` into an empty temporary folder, imported from there
// and scoring against a live seglossd; its segloss.d.ts declares every export and, where a tsc
// is found (SEGLOSS_TSC, else tsc on PATH: Debian's node-typescript), type-checks
// types-usage.ts. Without npm (Debian's nodejs 18 comes without it: apt-get install npm) or tsc
// those tests are skipped, and say why.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test as nodeTest } from "node:test";
import { selected, startServer } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.resolve(here, "../../../clients/js");
let registered = 0;
const test = (name, opts, fn) => {
    if (selected(`js/${name}`)) {
        registered++;
        nodeTest(`js/${name}`, opts, fn);
    }
};

// path of a program on PATH, or null
function which(name) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : null;
}
const npm = which("npm");
const tsc = process.env.SEGLOSS_TSC || which("tsc");

let tmp;
let server;

test("segloss.d.ts declares every export of segloss.js, and no other value", async () => {
    const mod = await import(path.join(pkgDir, "segloss.js"));
    const dts = readFileSync(path.join(pkgDir, "segloss.d.ts"), "utf8");
    const declared = [...dts.matchAll(/^export declare (?:const|class|function) (\w+)/gm)].map((m) => m[1]);
    assert.deepEqual([...declared].sort(), Object.keys(mod).sort());
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    assert.equal(pkg.version, mod.VERSION, "package.json's version is VERSION");
    assert.deepEqual(pkg.dependencies ?? {}, {}, "no runtime dependencies");
});

const noNpm = npm ? false : "no npm here (Debian: apt-get install npm); npm pack not tested";
let installed = null; // the folder the tarball was installed into

test("npm pack, then npm install --offline into an empty folder, then import", { skip: noNpm }, async () => {
    const env = { ...process.env, npm_config_cache: path.join(tmp, "cache"), npm_config_update_notifier: "false" };
    const out = execFileSync(npm, ["pack", "--pack-destination", tmp], { cwd: pkgDir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    const tgz = `segloss-${pkg.version}.tgz`;
    assert.ok(out.trim().endsWith(tgz), out);
    const files = execFileSync("tar", ["tzf", path.join(tmp, tgz)], { encoding: "utf8" }).trim().split("\n").sort();
    assert.deepEqual(files, ["package/README.md", "package/package.json", "package/segloss.d.ts", "package/segloss.js"]);

    const app = path.join(tmp, "app");
    execFileSync("mkdir", [app]);
    copyFileSync(path.join(tmp, tgz), path.join(app, tgz));
    execFileSync(npm, ["install", "--offline", "--no-audit", "--no-fund", `./${tgz}`], { cwd: app, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.deepEqual(readdirSync(path.join(app, "node_modules")).filter((d) => !d.startsWith(".")), ["segloss"],
        "nothing but segloss installed");
    writeFileSync(path.join(app, "use.mjs"), `
import { Client } from "segloss";
const client = new Client(process.argv[2]);
const out = await client.score(
  { data: new Float32Array([0.5, 0.6, 0.2, 0.1]), shape: [1, 2, 2] },
  { data: new Uint8Array([1, 1, 0, 0]), shape: [1, 2, 2] },
  { losses: ["cross_entropy", "dice"], prediction_type: "probabilities", transport: "multipart" });
console.log(out.losses.cross_entropy.value + out.losses.dice.value);
`);
    const printed = execFileSync(process.execPath, ["use.mjs", server.url], { cwd: app, encoding: "utf8" });
    // CE of p = .5, .6 (mask 1), .2, .1 (mask 0), plus the soft Dice loss 1 - 2*1.1/(1.4+2)
    const ce = -(Math.log(0.5) + Math.log(0.6) + Math.log(0.8) + Math.log(0.9)) / 4;
    assert.ok(Math.abs(Number(printed) - (ce + 1 - 2.2 / 3.4)) < 1e-6, printed);
    installed = app;
});

const noTsc = tsc ? false : "no tsc here (Debian: apt-get install node-typescript, or SEGLOSS_TSC=path/to/tsc); the types were not compiled";

test("tsc --noEmit: types-usage.ts against the package's segloss.d.ts", { skip: noTsc }, () => {
    // the installed tarball when npm made one, else the package folder linked as node_modules/segloss
    let app = installed;
    if (!app) {
        app = path.join(tmp, "tsapp");
        execFileSync("mkdir", ["-p", path.join(app, "node_modules")]);
        execFileSync("ln", ["-s", pkgDir, path.join(app, "node_modules", "segloss")]);
    }
    // .mts: an ES module whatever the folder's package.json says
    copyFileSync(path.join(here, "types-usage.ts"), path.join(app, "types-usage.mts"));
    writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify({
        compilerOptions: {
            strict: true, noEmit: true, target: "es2020", module: "node16", moduleResolution: "node16",
            lib: ["es2020", "dom"], types: [], skipLibCheck: false,
        },
        files: ["types-usage.mts"],
    }));
    const r = spawnSync(tsc, ["-p", "."], { cwd: app, encoding: "utf8" });
    assert.equal(r.status, 0, `${tsc}: ${r.stdout}${r.stderr}`);
});

// the server and the folder only when a test is selected (hooks without tests would keep the
// server running)
if (registered) {
    before(async () => {
        tmp = mkdtempSync(path.join(tmpdir(), "segloss-js-"));
        server = await startServer();
    });
    after(async () => {
        if (server) await server.stop();
        if (tmp) rmSync(tmp, { recursive: true, force: true });
    });
}
