// A virus scanner behind one interface: bytes in (a whole message, or one attachment), a verdict out.
// Inbound mail asks it when the operator runs one (ClamAV's clamd).
import type { Readable } from 'node:stream';

export interface ScanResult {
  infected: boolean;
  /** The name of the signature that matched; null when clean. */
  signature: string | null;
}

export interface VirusScanner {
  /**
   * Scans the content; throws AntivirusError when there is no verdict. A stream is read until the
   * scanner replies, then destroyed. An abort through `signal` rejects with the signal's reason.
   */
  scan(content: Buffer | Readable, options?: { signal?: AbortSignal }): Promise<ScanResult>;
  /** Resolves when the scanner answers (health checks); throws AntivirusError otherwise. */
  ping(options?: { signal?: AbortSignal }): Promise<void>;
}

export type AntivirusErrorCode =
  /** Not reachable, or the connection closed before a reply. */
  | 'antivirus_unavailable'
  /** No reply within the timeout. */
  | 'antivirus_timeout'
  /** The content is larger than the scanner accepts (clamd's StreamMaxLength). */
  | 'antivirus_size_limit'
  /** The scanner replied with an error of its own (out of memory, a broken database...). */
  | 'antivirus_scan_failed'
  /** The reply is not one the protocol allows. */
  | 'antivirus_malformed'
  /** The scanner's address setting cannot be used. */
  | 'antivirus_misconfigured';

export class AntivirusError extends Error {
  readonly code: AntivirusErrorCode;

  constructor(code: AntivirusErrorCode, message: string) {
    super(message);
    this.name = 'AntivirusError';
    this.code = code;
  }
}
