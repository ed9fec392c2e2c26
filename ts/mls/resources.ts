/**
 * Explicit release of wasm-backed objects. `free()` and `Symbol.dispose`
 * release at once; a FinalizationRegistry is the backstop for objects the
 * application forgets (wasm-bindgen's own weak-ref support also applies).
 */
import { MlsError } from './errors.js';

const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose);

export { disposeSymbol };

interface Freeable {
  free(): void;
}

const registry =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<Freeable>((inner) => {
        try {
          inner.free();
        } catch {
          // already released
        }
      })
    : undefined;

/** Base class of wrappers that own one wasm object. */
export abstract class Resource<T extends Freeable> {
  #inner: T | undefined;

  protected constructor(inner: T) {
    this.#inner = inner;
    registry?.register(this, inner, this);
  }

  /** The wasm object; throws once released. */
  protected get inner(): T {
    if (!this.#inner) throw new MlsError('RELEASED', `${this.constructor.name} was already released`);
    return this.#inner;
  }

  /** Swap in a new wasm object (after reloading state), releasing the old one. */
  protected replaceInner(next: T): void {
    const old = this.#inner;
    if (old) {
      registry?.unregister(this);
      old.free();
    }
    this.#inner = next;
    registry?.register(this, next, this);
  }

  get released(): boolean {
    return this.#inner === undefined;
  }

  /** Release the wasm memory now. Safe to call twice. */
  free(): void {
    const inner = this.#inner;
    if (!inner) return;
    this.#inner = undefined;
    registry?.unregister(this);
    inner.free();
  }

  [disposeSymbol](): void {
    this.free();
  }
}
