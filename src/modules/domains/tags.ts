// Tag-value lists (`v=DKIM1; k=rsa; p=...`), as DKIM (RFC 6376 §3.2) and DMARC (RFC 7489 §6.3)
// records write them, and what each of those records must hold.

export interface TagList {
  tags: Map<string, string>;
  errors: string[];
}

export function parseTagList(text: string): TagList {
  const tags = new Map<string, string>();
  const errors: string[] = [];
  for (const part of text.split(';')) {
    if (!part.trim()) continue;
    const match = /^\s*([a-z][a-z0-9_]*)\s*=(.*)$/i.exec(part);
    if (!match) {
      errors.push(`"${part.trim()}" is not a tag=value pair`);
      continue;
    }
    const tag = match[1].toLowerCase();
    if (tags.has(tag)) errors.push(`tag "${tag}" appears twice`);
    tags.set(tag, match[2].trim());
  }
  return { tags, errors };
}

export interface DkimRecord {
  algorithm: string;
  publicKey: string;
  testing: boolean;
  errors: string[];
}

export function parseDkim(text: string): DkimRecord {
  const { tags, errors } = parseTagList(text);
  const version = tags.get('v');
  if (version !== undefined && (version !== 'DKIM1' || !/^\s*v\s*=/i.test(text))) {
    errors.push('v= must be "DKIM1" and come first');
  }
  if (!tags.has('p')) errors.push('the p= tag (public key) is missing');
  return {
    algorithm: (tags.get('k') ?? 'rsa').toLowerCase(),
    publicKey: (tags.get('p') ?? '').replace(/\s+/g, ''),
    testing: (tags.get('t') ?? '').split(':').some((f) => f.trim() === 'y'),
    errors,
  };
}

const POLICIES = ['none', 'quarantine', 'reject'];

export interface DmarcRecord {
  policy: string | null;
  errors: string[];
  warnings: string[];
}

export function parseDmarc(text: string): DmarcRecord {
  const { tags, errors } = parseTagList(text);
  const warnings: string[] = [];
  if (!/^v\s*=\s*DMARC1\s*(;|$)/.test(text.trim())) errors.push('the record must start with "v=DMARC1"');
  const policy = tags.get('p')?.toLowerCase() ?? null;
  if (policy === null) errors.push('the p= tag (policy) is missing');
  else if (!POLICIES.includes(policy)) errors.push(`p=${policy} is not one of none, quarantine, reject`);
  const sp = tags.get('sp')?.toLowerCase();
  if (sp !== undefined && !POLICIES.includes(sp))
    errors.push(`sp=${sp} is not one of none, quarantine, reject`);
  for (const tag of ['adkim', 'aspf']) {
    const v = tags.get(tag)?.toLowerCase();
    if (v !== undefined && v !== 'r' && v !== 's')
      errors.push(`${tag}=${v} must be r (relaxed) or s (strict)`);
  }
  const pct = tags.get('pct');
  if (pct !== undefined && !(/^\d{1,3}$/.test(pct) && Number(pct) <= 100)) {
    errors.push(`pct=${pct} must be a whole number from 0 to 100`);
  }
  for (const tag of ['rua', 'ruf']) {
    for (const uri of tags.get(tag)?.split(',') ?? []) {
      if (!/^(mailto:[^@\s]+@[^@\s]+|https?:\/\/\S+)$/i.test(uri.trim())) {
        errors.push(`${tag} has "${uri.trim()}", which is not a mailto: or https: URI`);
      }
    }
  }
  const known = new Set([
    'v',
    'p',
    'sp',
    'adkim',
    'aspf',
    'pct',
    'rua',
    'ruf',
    'fo',
    'rf',
    'ri',
    'np',
    'psd',
    't',
  ]);
  for (const tag of tags.keys()) {
    if (!known.has(tag)) warnings.push(`unknown tag "${tag}" is ignored by receivers`);
  }
  if (policy === 'none') warnings.push('p=none only monitors: receivers still deliver mail that fails DMARC');
  return { policy, errors, warnings };
}
