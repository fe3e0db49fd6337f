// SPF, DKIM, DMARC and ARC verdicts for an incoming message (mailauth), the Authentication-Results header
// they make, and what DMARC asks us to do with a failure.
import { authenticate } from 'mailauth';
import { headerLength } from '../../core/message.ts';
import type { MessageAuth } from '../messages/tables.ts';
import { useFastHeaderScan } from './mailauth-header-scan.ts';
import type { MailauthResolver } from '../../core/resolver.ts';

useFastHeaderScan();

export interface AuthenticateInput {
  raw: Buffer;
  ip: string;
  helo: string;
  mailFrom: string;
}

export interface AuthenticateOptions {
  /** This MX's host name, the authserv-id of the header. */
  hostname: string;
  resolver: MailauthResolver;
  /** Random source for DMARC pct= sampling (tests make it certain). */
  random?: () => number;
}

interface Verdict {
  status?: { result?: string };
}

/** What the published DMARC policy asks for this message (before the recipient domain's own choice). */
export type DmarcDisposition = 'accept' | 'quarantine' | 'reject';

export async function authenticateMessage(
  input: AuthenticateInput,
  options: AuthenticateOptions,
): Promise<MessageAuth> {
  const result = await authenticate(signedPart(input.raw), {
    ip: input.ip,
    helo: input.helo,
    sender: input.mailFrom || undefined,
    mta: options.hostname,
    resolver: options.resolver as never,
    disableBimi: true,
  });
  const dmarc = result.dmarc as (Verdict & { policy?: string; domain?: string; pct?: number }) | false;
  const dkimResults = ((result.dkim as { results?: unknown[] })?.results ?? []) as {
    signingDomain?: string;
    selector?: string;
    status?: { result?: string; aligned?: string | false };
  }[];
  const header = /^Authentication-Results: [\s\S]*$/m.exec(result.headers)?.[0] ?? '';
  return {
    spf: verdictOf(result.spf),
    dkim: dkimResults.map((r) => ({
      domain: r.signingDomain ?? '',
      selector: r.selector ?? null,
      result: r.status?.result ?? 'none',
      aligned: Boolean(r.status?.aligned),
    })),
    dmarc: {
      result: dmarc ? (dmarc.status?.result ?? 'none') : 'none',
      policy: dmarc ? (dmarc.policy ?? null) : null,
      domain: dmarc ? (dmarc.domain ?? null) : null,
    },
    arc: verdictOf(result.arc),
    authentication_results: header.replace(/^Authentication-Results:\s*/, '').trimEnd(),
    action: disposition(dmarc, options.random ?? Math.random),
  };
}

/** Header fields whose verification needs the body (DKIM's body hash, ARC's message signature). */
const SIGNATURE_FIELD = /^(?:dkim-signature|arc-message-signature|arc-seal)[ \t]*:/im;

/**
 * The message, or only its header when nothing in it is signed: SPF and DMARC read the header and the
 * envelope, and mailauth would otherwise hash the whole body (an eighth of the MX's time per message) for
 * signatures that are not there.
 */
function signedPart(raw: Buffer): Buffer {
  const header = raw.subarray(0, headerLength(raw));
  return SIGNATURE_FIELD.test(header.toString('latin1')) ? raw : header;
}

function disposition(
  dmarc: (Verdict & { policy?: string; pct?: number }) | false,
  random: () => number,
): DmarcDisposition {
  if (dmarc === false || dmarc.status?.result !== 'fail') return 'accept';
  // pct= applies the policy to that share of failing mail; the rest gets the next milder treatment.
  const sampled = random() * 100 < (dmarc.pct ?? 100);
  if (dmarc.policy === 'reject') return sampled ? 'reject' : 'quarantine';
  if (dmarc.policy === 'quarantine') return sampled ? 'quarantine' : 'accept';
  return 'accept';
}

function verdictOf(check: unknown): string {
  return (check as Verdict | false) ? ((check as Verdict).status?.result ?? 'none') : 'none';
}
