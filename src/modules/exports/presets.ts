// Credential export layouts: the columns an inbox export can carry, under their generic snake_case
// names, and the presets of the sending tools that import such files.
//
// Neither Instantly nor Smartlead publishes its bulk-import CSV template where we could read it; both
// publish the fields of the API call that adds one account, and their presets use those field names:
//   instantly  POST /api/v2/accounts   https://developer.instantly.ai/api-reference/account/create-account
//   smartlead  POST /api/v1/email-accounts/save   https://api.smartlead.ai/reference/create-an-email-account
// A column a tool does not name (Instantly has no security or warmup field at creation, Smartlead no
// first or last name) keeps its generic name when asked for with `columns=`.
import { validationFailed } from '../../core/errors.ts';
import type { Cell, CsvColumn } from './csv.ts';

export interface MailServer {
  host: string;
  port: number;
  /** SSL: TLS from the first byte (465, 993); STARTTLS: upgraded on the plain port. */
  security: 'SSL' | 'STARTTLS';
}

/** Where exported mailboxes log in. */
export interface InboxServers {
  smtp: MailServer;
  imap: MailServer;
}

/** One mailbox as an export sees it. */
export interface InboxRow {
  address: string;
  firstName: string;
  lastName: string;
  displayName: string;
  /** Only for mailboxes created with export enabled (and only when a password column is asked for). */
  password: string | null;
  /** Recipients a day: the mailbox's own limit, else the installation's; null: none. */
  dailyLimit: number | null;
}

export const INBOX_COLUMNS = [
  'email',
  'first_name',
  'last_name',
  'display_name',
  'smtp_host',
  'smtp_port',
  'smtp_username',
  'smtp_password',
  'smtp_security',
  'imap_host',
  'imap_port',
  'imap_username',
  'imap_password',
  'imap_security',
  'daily_limit',
  'warmup_enabled',
] as const;
export type InboxColumn = (typeof INBOX_COLUMNS)[number];

interface ColumnDefinition {
  value: (row: InboxRow, servers: InboxServers) => Cell;
  /** A credential: written character for character (see csv.ts). */
  verbatim?: boolean;
}

// The SMTP and IMAP username is the mailbox's address. Warmup does not exist yet: the flag is false for
// every mailbox, and the column is there so that the layouts the tools expect are complete.
const DEFINITIONS: Record<InboxColumn, ColumnDefinition> = {
  email: { value: (r) => r.address, verbatim: true },
  first_name: { value: (r) => r.firstName },
  last_name: { value: (r) => r.lastName },
  display_name: { value: (r) => r.displayName },
  smtp_host: { value: (_, s) => s.smtp.host },
  smtp_port: { value: (_, s) => s.smtp.port },
  smtp_username: { value: (r) => r.address, verbatim: true },
  smtp_password: { value: (r) => r.password, verbatim: true },
  smtp_security: { value: (_, s) => s.smtp.security },
  imap_host: { value: (_, s) => s.imap.host },
  imap_port: { value: (_, s) => s.imap.port },
  imap_username: { value: (r) => r.address, verbatim: true },
  imap_password: { value: (r) => r.password, verbatim: true },
  imap_security: { value: (_, s) => s.imap.security },
  daily_limit: { value: (r) => r.dailyLimit },
  warmup_enabled: { value: () => false },
};

const PASSWORD_COLUMNS: readonly InboxColumn[] = ['smtp_password', 'imap_password'];

export interface InboxPreset {
  /** The columns it has when `columns=` is not given, in order. */
  columns: readonly InboxColumn[];
  /** The tool's names for columns; any other keeps its generic name. */
  headers: Partial<Record<InboxColumn, string>>;
}

export const INBOX_PRESETS = {
  generic: { columns: INBOX_COLUMNS, headers: {} },
  // The create-account fields, in the order of Instantly's example request; its names are the generic ones.
  instantly: {
    columns: [
      'email',
      'first_name',
      'last_name',
      'imap_username',
      'imap_password',
      'imap_host',
      'imap_port',
      'smtp_username',
      'smtp_password',
      'smtp_host',
      'smtp_port',
      'daily_limit',
    ],
    headers: {},
  },
  // Smartlead takes one password for SMTP and IMAP, and one sender name (the display name).
  smartlead: {
    columns: [
      'display_name',
      'email',
      'smtp_username',
      'smtp_password',
      'smtp_host',
      'smtp_port',
      'imap_host',
      'imap_port',
      'warmup_enabled',
      'daily_limit',
    ],
    headers: {
      display_name: 'from_name',
      email: 'from_email',
      smtp_username: 'user_name',
      smtp_password: 'password',
      daily_limit: 'max_email_per_day',
    },
  },
} satisfies Record<string, InboxPreset>;
export type InboxPresetName = keyof typeof INBOX_PRESETS;
export const INBOX_PRESET_NAMES = Object.keys(INBOX_PRESETS) as [InboxPresetName, ...InboxPresetName[]];

/**
 * The columns of an export: the preset's, or those named in `requested` (comma-separated generic names,
 * in that order). 422 for an unknown or repeated name.
 */
export function inboxColumns(preset: InboxPresetName, requested: string | undefined): InboxColumn[] {
  if (requested === undefined) return [...INBOX_PRESETS[preset].columns];
  const names = requested
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const field = 'querystring.columns';
  if (names.length === 0) throw validationFailed(field, 'name at least one column');
  const unknown = names.filter((n) => !(INBOX_COLUMNS as readonly string[]).includes(n));
  if (unknown.length)
    throw validationFailed(
      field,
      `unknown column ${unknown.join(', ')}; the columns are ${INBOX_COLUMNS.join(', ')}`,
    );
  const repeated = names.filter((n, i) => names.indexOf(n) !== i);
  if (repeated.length) throw validationFailed(field, `${[...new Set(repeated)].join(', ')} named twice`);
  return names as InboxColumn[];
}

/** Whether any of `columns` carries the password (so it is decrypted only then). */
export function carriesPasswords(columns: readonly InboxColumn[]): boolean {
  return columns.some((c) => PASSWORD_COLUMNS.includes(c));
}

/** The CSV columns of `columns` under the preset's header names, with the servers filled in. */
export function inboxCsvColumns(
  preset: InboxPresetName,
  columns: readonly InboxColumn[],
  servers: InboxServers,
): CsvColumn<InboxRow>[] {
  const headers: Partial<Record<InboxColumn, string>> = INBOX_PRESETS[preset].headers;
  return columns.map((name) => {
    const { value, verbatim } = DEFINITIONS[name];
    return { header: headers[name] ?? name, value: (row) => value(row, servers), verbatim };
  });
}
