/**
 * Loading the wasm core. One instance per loaded copy of this module: in
 * Node the .wasm file next to the bundle is read from disk, in browsers it
 * is fetched (or a bundler hands its URL/bytes in).
 */
import initCore, { initSync, coreVersion, supportedCiphersuites, installEncapPool, installNativeCurves, installVerifyPool, nativeCurvesInstalled } from '../../pkg/paired_mls_core.js';
import { BrowserEncapPool } from './browser-encap-pool.js';
import { nodeNativeCurves, type NodeNativeCurves } from './native-curves.js';
import { VerifyPool, type VerifyPoolStats } from './verify-pool.js';
import { MlsError, toMlsError } from './errors.js';

/** Where `init()` gets the wasm module: bytes, a compiled module, a URL or path, or a fetch Response. */
export type WasmSource = BufferSource | WebAssembly.Module | URL | string | Response;

let ready: Promise<void> | undefined;
let loaded = false;
let poisoned: MlsError | undefined;
let memory: WebAssembly.Memory | undefined;
let nodeCurves: NodeNativeCurves | undefined;
let nodeWorkers: typeof import('node:worker_threads') | undefined;
/** The core's compiled module, which verification workers (Node) and Encap workers (browsers) instantiate too. */
let coreModule: WebAssembly.Module | undefined;
let verifyPool: VerifyPool | undefined;
let browserPool: BrowserEncapPool | undefined;
/** Distinguishes loaded copies of the library (each has its own wasm instance). */
const instanceId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

const WASM_FILE = 'paired_mls_core_bg.wasm';

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

async function loadInNode(): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const bytes = await readFile(new URL(`./${WASM_FILE}`, import.meta.url));
  // Compiled here (not inside initSync) so that verification workers can
  // instantiate the same module without compiling it again.
  coreModule = new WebAssembly.Module(bytes);
  const exports = initSync({ module: coreModule });
  memory = exports.memory;
  nodeWorkers = await import('node:worker_threads');
  // Node's OpenSSL does X25519 DH (and long-message Ed25519, AES-GCM,
  // SHA-256) several times faster than Rust in wasm (native_crypto.rs says
  // what goes where); PAIRED_MLS_NATIVE_CURVES=0 keeps the pure-wasm path.
  nodeCurves = nodeNativeCurves(await import('node:crypto'), nodeWorkers);
  if (process.env.PAIRED_MLS_NATIVE_CURVES !== '0') installNativeCurves(nodeCurves as never);
  // PAIRED_MLS_THREADS=N sets the worker threads before any call (bench/run.js --threads).
  const threads = process.env.PAIRED_MLS_THREADS;
  if (threads !== undefined && threads !== '') setNodeThreads(Number(threads));
}

/**
 * The core's module from `source` (by default the file next to this one),
 * compiled once. Accepts what wasm-bindgen's `initCore` accepted before
 * (review63d), in the same way: a promise is awaited first; a string, URL
 * or Request is fetched; a Response is compiled streaming, falling back to
 * its bytes (with wasm-bindgen's warning) only when the server did not send
 * `application/wasm` on a basic/cors/default response, else its error is
 * thrown as before; bytes are compiled; a compiled module (also one from
 * another realm, which `instanceof` misses) is used as is.
 */
async function compileInBrowser(source: WasmSource | undefined): Promise<WebAssembly.Module> {
  let input: unknown = await (source as unknown);
  if (input === undefined) input = new URL(`./${WASM_FILE}`, import.meta.url);
  if (typeof input === 'string' || (typeof Request === 'function' && input instanceof Request) || (typeof URL === 'function' && input instanceof URL)) {
    input = await fetch(input as RequestInfo | URL);
  }
  if (typeof Response === 'function' && input instanceof Response) {
    if (!input.ok) throw new Error(`failed to fetch Wasm: ${input.status} ${input.statusText} fetching '${input.url}'`);
    if (typeof WebAssembly.compileStreaming === 'function') {
      try {
        return await WebAssembly.compileStreaming(input);
      } catch (error) {
        const basic = input.type === 'basic' || input.type === 'cors' || input.type === 'default';
        if (!basic || input.headers.get('Content-Type') === 'application/wasm') throw error;
        console.warn('`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\n', error);
      }
    }
    return WebAssembly.compile(await input.arrayBuffer());
  }
  if (input instanceof WebAssembly.Module || Object.prototype.toString.call(input) === '[object WebAssembly.Module]') return input as WebAssembly.Module;
  return WebAssembly.compile(input as BufferSource);
}

/**
 * Load the wasm core. Safe to call many times; the library's entry points
 * call it themselves. Pass `source` to supply the wasm yourself (a URL,
 * its bytes, a compiled module or a fetch Response).
 */
export function init(source?: WasmSource): Promise<void> {
  if (!ready) {
    ready = (async () => {
      if (source === undefined && isNode()) {
        await loadInNode();
      } else {
        // Compiled here (not inside initCore) so that the browsers' Encap
        // workers can instantiate the same module without compiling it again.
        coreModule = await compileInBrowser(source);
        const exports = await initCore({ module_or_path: coreModule });
        memory = exports.memory;
      }
      loaded = true;
    })();
    ready.catch(() => {
      ready = undefined;
    });
  }
  return ready;
}

/**
 * Where the core's X25519 and Ed25519 run: `'native'` (Node's OpenSSL,
 * the default in Node) or `'wasm'` (pure Rust, always the case in
 * browsers). Both produce the same bytes and interoperate; the choice is
 * about speed only.
 */
export function curveBackend(): 'native' | 'wasm' {
  assertReady();
  return nativeCurvesInstalled() ? 'native' : 'wasm';
}

/**
 * Switch the core's curves between Node's native crypto and pure Rust in
 * wasm (for comparisons and tests). Returns the backend now in use;
 * `'native'` is refused outside Node.
 */
export function setCurveBackend(backend: 'native' | 'wasm'): 'native' | 'wasm' {
  assertReady();
  if (backend === 'native' && !nodeCurves) throw new MlsError('INVALID_ARGUMENT', 'native curves are only available in Node');
  installNativeCurves(backend === 'native' ? (nodeCurves as never) : undefined);
  return curveBackend();
}

/**
 * Worker threads, besides the calling thread, for the X25519 Encaps of a
 * commit's path (batches of 64 or more in Node: groups of about 65
 * members and up; of 9 or more in browsers: about 10 members and up) and,
 * in Node, the leaf signatures of a joined tree of 32 members or more.
 * `0` (the default): none. A failed or stalled worker is replaced; the
 * bytes on the wire are the same either way. Node: worker_threads, never
 * keeping the process alive. Browsers: Web Workers on a
 * cross-origin isolated page, else `UNSUPPORTED`. Returns the number set.
 * docs/PROTOCOL.md §1.5 has the details.
 */
export function setThreads(threads: number): number {
  assertReady();
  if (!Number.isInteger(threads) || threads < 0 || threads > 64) throw new MlsError('INVALID_ARGUMENT', 'threads must be a whole number from 0 to 64');
  if (nodeCurves) {
    setNodeThreads(threads);
    return nodeCurves.threads();
  }
  if (threads === (browserPool?.threads ?? 0)) return threads;
  if (threads > 0 && !BrowserEncapPool.supported()) {
    throw new MlsError('UNSUPPORTED', 'threads need SharedArrayBuffer and Web Workers: serve the page cross-origin isolated (COOP same-origin, COEP require-corp)');
  }
  browserPool?.close();
  browserPool = threads > 0 ? new BrowserEncapPool(threads, coreModule!) : undefined;
  const pool = browserPool;
  // The core calls the batch methods of the NativeCurves contract.
  installEncapPool((pool ? { x25519EncapBegin: (keys: Uint8Array) => pool.begin(keys), x25519EncapClaim: (chunkSize: number) => pool.claim(chunkSize), x25519EncapTake: (out: Uint8Array) => pool.take(out), x25519EncapEnd: () => pool.end() } : undefined) as never);
  return threads;
}

/** Node: the Encap pool's workers, and as many verifying a joined tree's leaf signatures (verify-pool.ts). */
function setNodeThreads(threads: number): void {
  nodeCurves!.setThreads(threads);
  if (threads === (verifyPool?.threads ?? 0)) return;
  verifyPool?.close();
  verifyPool = threads > 0 ? new VerifyPool(nodeWorkers!, coreModule!, threads) : undefined;
  installVerifyPool(verifyPool as never);
}

/** The worker threads set by `setThreads`. */
export function threadCount(): number {
  assertReady();
  return nodeCurves ? nodeCurves.threads() : (browserPool?.threads ?? 0);
}

/**
 * What the worker pool of `setThreads` did since it was set: batches it
 * ran, Encaps made by the workers and by the calling thread, chunks a
 * worker failed (redone by the calling thread), stalls (Node: batch
 * finished on the calling thread; browsers: batch sealed in wasm; the pool
 * is replaced), and workers running now. Undefined with `setThreads(0)`.
 */
export function threadStats(): ThreadStats | undefined {
  assertReady();
  if (nodeCurves) {
    const encaps = nodeCurves.poolStats();
    return encaps && verifyPool ? { ...encaps, verify: { ...verifyPool.stats, running: verifyPool.running } } : encaps;
  }
  return browserPool ? { ...browserPool.stats, running: browserPool.running } : undefined;
}

/** See `threadStats()`. */
export interface ThreadStats {
  pooledBatches: number;
  workerEncaps: number;
  callingThreadEncaps: number;
  redoneChunks: number;
  stalls: number;
  running: number;
  /** Node: the pool verifying a joined tree's leaf signatures, and its workers running now. */
  verify?: VerifyPoolStats & { running: number };
}

/** Throw unless the core is loaded and healthy. */
export function assertReady(): void {
  if (poisoned) throw poisoned;
  if (!loaded) throw new MlsError('WASM_NOT_LOADED', 'call `await init()` first');
}

/**
 * Run a synchronous core call, mapping failures to `MlsError`. A trap
 * (abort) in wasm poisons this copy of the library for good.
 */
export function call<T>(fn: () => T): T {
  assertReady();
  try {
    return fn();
  } catch (err) {
    const mapped = toMlsError(err);
    if (mapped.code === 'WASM_POISONED') poisoned = mapped;
    throw mapped;
  }
}

/** Bytes of linear memory the wasm instance currently holds. */
export function wasmMemoryBytes(): number {
  assertReady();
  return memory ? memory.buffer.byteLength : 0;
}

/** The core's version and the ciphersuites (RFC 9420 §17.1 code points) this build runs. */
export function coreInfo(): { version: string; ciphersuites: number[] } {
  return call(() => ({ version: coreVersion(), ciphersuites: Array.from(supportedCiphersuites()) }));
}

/** Id of this loaded copy of the library and its wasm instance. */
export function coreInstanceId(): string {
  return instanceId;
}
