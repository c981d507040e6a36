// Types of segloss.js, the JavaScript client of seglossd (written by hand; tests/clients/js
// checks them with tsc against a usage file, and that every export is declared here).

export declare const VERSION: string;
export declare const DEFAULT_URL: string;
export declare const PARALLEL_MAX: number;
export declare const MAX_DELAY: number;

/** The dtypes seglossd reads. */
export type Dtype =
    | "bool" | "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "int64"
    | "float16" | "float32" | "float64";
export declare const DTYPE_NAMES: readonly Dtype[];

export type TypedArray =
    | Uint8Array | Uint8ClampedArray | Int8Array | Uint16Array | Int16Array | Uint32Array
    | Int32Array | BigInt64Array | Float32Array | Float64Array;

/** An n-dimensional array in C order. dtype defaults to the typed array's own; "bool" takes a
 * Uint8Array of 0/1, "float16" a Uint16Array of the half-precision bits. shape defaults to
 * [data.length]. */
export interface NdArray<T extends TypedArray = TypedArray> {
    data: T;
    shape?: number[];
    dtype?: Dtype;
}

/** What decodeNpy and weightMap return: shape and dtype always set. */
export interface DecodedArray<T extends TypedArray = TypedArray> {
    data: T;
    shape: number[];
    dtype: Dtype;
}

/** A loss or metric: a name, or an object {name, as?, ...parameters}. */
export type Entry = string | { name: string; as?: string; [param: string]: unknown };

export type Compression = "gzip" | "none" | "auto";

/** The spec keys passed as they are (API.md, "The spec"). */
export interface SpecOptions {
    mode?: "binary" | "multiclass" | "multilabel";
    prediction_type?: "logits" | "probabilities" | "labels";
    ignore_index?: number;
    threshold?: number;
    empty?: "one" | "zero" | "nan";
    spacing?: number[];
    include_background?: boolean;
    per_image?: boolean;
    [key: string]: unknown;
}

export interface ScoreOptions extends SpecOptions {
    losses?: Entry | Entry[] | null;
    metrics?: Entry | Entry[] | null;
    weight?: NdArray | null;
    instances?: NdArray | null;
    /** "json" (base64 .npy in the JSON body, the default) or "multipart" (FormData parts). */
    transport?: "json" | "multipart";
    /** "auto" (the default): gzip where CompressionStream exists, else none. */
    compression?: Compression;
    /** Aborts the request (and its retries); it rejects with the signal's reason. */
    signal?: AbortSignal;
}

export interface ScoreBatchesOptions extends ScoreOptions {
    /** Requests at once, 1..PARALLEL_MAX (default 1). */
    parallel?: number;
    weight?: null;
    instances?: null;
}

export interface WeightMapOptions {
    instances?: NdArray | null;
    compression?: Compression;
    signal?: AbortSignal;
    w0?: number;
    sigma?: number;
    class_weights?: number[];
    neighbors?: 1 | 2;
    connectivity?: 4 | 6 | 8 | 26;
    spacing?: number[];
}

/** One loss's or metric's result. */
export interface Value {
    value?: number | null;
    mean?: number | null;
    per_image?: (number | null)[];
    per_class?: (number | null)[];
    [key: string]: unknown;
}

/** The /v1/score answer (only the commonest keys typed). */
export interface ScoreAnswer {
    losses: Record<string, Value>;
    metrics: Record<string, Value>;
    mode: string;
    images: number;
    classes: number;
    shape: number[];
    [key: string]: unknown;
}

export interface ClientOptions {
    /** Seconds one attempt may take, answer included (default 300); not retried. */
    timeout?: number;
    /** Repeats after a 503/429 answer or a connection failure (default 3). */
    retries?: number;
    /** Seconds before the first repeat, doubled each time (default 0.25). */
    backoff?: number;
}

export declare class SeglossError extends Error {
    constructor(status: number | null, title: string, detail: string, extra?: {
        problem?: Record<string, unknown> | null; retryAfter?: number | null; requestId?: string | null;
    });
    /** The HTTP status; null when there was no answer. */
    status: number | null;
    title: string;
    /** The problem+json detail: names the key path or array index that is wrong. */
    detail: string;
    problem: Record<string, unknown> | null;
    /** Seconds from Retry-After, or null. */
    retryAfter: number | null;
    requestId: string | null;
    /** Set by scoreBatches: the index of the failing batch. */
    batch?: number;
}

export declare class SeglossConnectionError extends SeglossError {
    constructor(detail: string);
    status: null;
}

export declare class Client {
    constructor(url?: string | null, options?: ClientOptions);
    readonly url: string;
    timeout: number;
    retries: number;
    backoff: number;
    score(pred: NdArray, target: NdArray, options?: ScoreOptions): Promise<ScoreAnswer>;
    scoreBatches(
        batches: Iterable<[NdArray, NdArray]> | AsyncIterable<[NdArray, NdArray]>,
        options?: ScoreBatchesOptions,
    ): Promise<ScoreAnswer[]>;
    weightMap(target: NdArray, options?: WeightMapOptions): Promise<DecodedArray<Float32Array>>;
    catalog(): Promise<Record<string, unknown>>;
    healthy(): Promise<boolean>;
    ready(): Promise<boolean>;
}

export declare function score(
    pred: NdArray, target: NdArray, options?: ScoreOptions & { url?: string },
): Promise<ScoreAnswer>;
export declare function weightMap(
    target: NdArray, options?: WeightMapOptions & { url?: string },
): Promise<DecodedArray<Float32Array>>;
export declare function checkArray(value: NdArray, name?: string): DecodedArray;
export declare function encodeNpy(value: NdArray, name?: string): Uint8Array;
export declare function decodeNpy(bytes: Uint8Array | ArrayBuffer): DecodedArray;
