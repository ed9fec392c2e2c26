/**
 * The server's database and WebSocket packages (`better-sqlite3`, `pg`,
 * `ws`) are optional peer dependencies: a browser app that installs
 * paired-mls builds nothing native. They are loaded when first used, so a
 * server that uses only PostgreSQL needs no SQLite, and a missing one is
 * reported as a typed error naming the package to install instead of a
 * module-resolution failure at import time.
 */
import { createRequire } from 'node:module';
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** The optional peer dependencies of `paired-mls/server`. */
export type PeerDependency = 'better-sqlite3' | 'pg' | 'ws';

/** The error codes of `paired-mls/server`'s own failures. */
export const SERVER_ERROR_CODES = ['PEER_DEPENDENCY_MISSING'] as const;
registerErrorCodes(SERVER_ERROR_CODES);

/** A feature of `paired-mls/server` needs a peer dependency that is not installed: an `MlsError` with code `PEER_DEPENDENCY_MISSING`. */
export class PeerDependencyError extends MlsError<(typeof SERVER_ERROR_CODES)[number]> {
  /** The package to install (`npm install <dependency>`). */
  readonly dependency: PeerDependency;

  constructor(dependency: PeerDependency, feature: string) {
    super('PEER_DEPENDENCY_MISSING', `${feature} needs the optional peer dependency "${dependency}": install it with \`npm install ${dependency}\``);
    this.name = 'PeerDependencyError';
    this.dependency = dependency;
  }
}

// Resolved from this file, so from the app's node_modules where the peers live.
const requireFromHere = createRequire(import.meta.url);

/** Load `dependency` (synchronously: the stores' constructors are synchronous), or throw PeerDependencyError. */
export function peerDependency<T>(dependency: PeerDependency, feature: string): T {
  // Only "not installed" becomes the typed error (resolving finds no file);
  // a peer that is present but fails to load keeps its own error.
  try {
    requireFromHere.resolve(dependency);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new PeerDependencyError(dependency, feature);
    throw e;
  }
  return requireFromHere(dependency) as T;
}
