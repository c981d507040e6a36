// types-usage.ts - compiled (never run) by pack.test.mjs with tsc --noEmit against the installed
// package's segloss.d.ts: the calls a TypeScript user writes type-check, and the wrong ones
// marked @ts-expect-error are refused (tsc fails if one of them is accepted).
import {
    Client, DEFAULT_URL, DTYPE_NAMES, PARALLEL_MAX, SeglossConnectionError, SeglossError, VERSION,
    checkArray, decodeNpy, encodeNpy, score, weightMap,
} from "segloss";
import type { DecodedArray, Dtype, NdArray, ScoreAnswer } from "segloss";

async function main(): Promise<number> {
    const client = new Client("http://127.0.0.1:8080", { timeout: 60, retries: 2, backoff: 0.1 });
    const pred: NdArray<Float32Array> = { data: new Float32Array(4), shape: [1, 2, 2] };
    const mask: NdArray = { data: new Uint8Array(4), shape: [1, 2, 2], dtype: "bool" };
    const out: ScoreAnswer = await client.score(pred, mask, {
        losses: ["dice", { name: "focal", gamma: 2, as: "focal_g2" }],
        metrics: "iou",
        prediction_type: "probabilities",
        transport: "multipart",
        compression: "auto",
        per_image: true,
    });
    const dice: number | null | undefined = out.losses.dice.value;
    const answers: ScoreAnswer[] = await client.scoreBatches([[pred, mask]], { parallel: 4 });
    const w: DecodedArray<Float32Array> = await weightMap(mask, { url: DEFAULT_URL, w0: 10 });
    const ok: boolean = (await client.healthy()) && (await client.ready());
    await client.catalog();
    await score(pred, mask, { url: client.url });
    const bytes: Uint8Array = encodeNpy(pred);
    const back: DecodedArray = decodeNpy(bytes);
    const dt: Dtype = checkArray(back).dtype;
    const names: readonly Dtype[] = DTYPE_NAMES;
    try {
        await client.score(pred, mask);
    } catch (e) {
        if (e instanceof SeglossConnectionError) return 2;
        if (e instanceof SeglossError) {
            const status: number | null = e.status;
            const detail: string = e.detail;
            return (status ?? 0) + detail.length + (e.retryAfter ?? 0);
        }
    }
    // @ts-expect-error uint64 is not a dtype the service reads
    const bad: NdArray = { data: new Uint8Array(1), dtype: "uint64" };
    // @ts-expect-error transport is json or multipart
    await client.score(pred, mask, { transport: "xml" });
    // @ts-expect-error compression zstd is not sent by this client
    await client.score(pred, mask, { compression: "zstd" });
    // @ts-expect-error a plain array is not a typed array
    await client.score({ data: [1, 2, 3] }, mask);
    // @ts-expect-error weight maps are per batch, not for scoreBatches
    await client.scoreBatches([], { weight: pred });
    return (dice ?? 0) + answers.length + w.data.length + Number(ok) + dt.length + names.length
        + PARALLEL_MAX + VERSION.length + String(bad).length;
}
main();
