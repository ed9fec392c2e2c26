/** Types of scripts/core-bundle.js (plain JS so that bench/run.js can load it). */
export declare const CORE_APP: string;
export declare function bundleCoreApp(): Promise<{ code: string; imports: string[]; bytes: number; gzipBytes: number; wasmGzipBytes: number }>;
