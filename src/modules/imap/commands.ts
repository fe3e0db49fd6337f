// The IMAP commands: in which states each is allowed, and what it does. Session-wide ones are here;
// folder and message commands are in commands/.
import { FOLDER_COMMANDS } from './commands/folders.ts';
import { MESSAGE_COMMANDS } from './commands/messages.ts';
import { parseAuthenticate, parseEnable, parseId, quoteAString } from './protocol/arguments.ts';
import type { Command } from './protocol/parser.ts';
import {
  AlreadyAnswered,
  bad,
  type CommandHandler,
  type ImapSession,
  no,
  type SessionState,
} from './session.ts';

const ANY: readonly SessionState[] = ['not-authenticated', 'authenticated', 'selected'];
const NOT_AUTHENTICATED: readonly SessionState[] = ['not-authenticated'];
export const AUTHENTICATED: readonly SessionState[] = ['authenticated', 'selected'];
export const SELECTED: readonly SessionState[] = ['selected'];

/** Extensions ENABLE turns on (RFC 5161); QRESYNC implies CONDSTORE. */
const ENABLEABLE = new Set(['CONDSTORE', 'QRESYNC', 'UTF8=ACCEPT']);

const SESSION_COMMANDS: Record<string, CommandHandler> = {
  CAPABILITY: {
    states: ANY,
    async run(session) {
      session.write(`* CAPABILITY ${session.capabilities().join(' ')}\r\n`);
    },
  },
  NOOP: { states: ANY, async run() {} },
  CHECK: { states: SELECTED, async run() {} },
  LOGOUT: {
    states: ANY,
    noSync: true,
    async run(session) {
      session.write('* BYE Logging out\r\n');
    },
  },
  STARTTLS: {
    states: NOT_AUTHENTICATED,
    async run(session, command) {
      if (session.secure) throw bad('Already using TLS');
      session.write(`${command.tag} OK Begin TLS negotiation now\r\n`);
      session.flush();
      // A failed handshake ends the connection; nothing is left to answer.
      await session.startTls().catch(() => session.close());
      // The tagged OK went before the handshake; nothing more for this command.
      throw new AlreadyAnswered();
    },
  },
  LOGIN: {
    states: NOT_AUTHENTICATED,
    async run(session, command) {
      if (!session.loginAllowed) throw no('Log in over TLS (STARTTLS) first', 'PRIVACYREQUIRED');
      const [user, password] = command.args;
      if (!user || !password || command.args.length !== 2)
        throw bad('LOGIN takes a user name and a password');
      return login(session, stringOf(user), stringOf(password));
    },
  },
  AUTHENTICATE: {
    states: NOT_AUTHENTICATED,
    async run(session, command) {
      const { mechanism, initial } = parseAuthenticate(command.args);
      if (mechanism !== 'PLAIN') throw no('Unsupported mechanism; use PLAIN', 'CANNOT');
      if (!session.loginAllowed) throw no('Log in over TLS (STARTTLS) first', 'PRIVACYREQUIRED');
      let response = initial;
      if (response === undefined) {
        session.write('+ \r\n');
        session.flush();
        const line = await session.nextLine();
        if (line === null) throw new AlreadyAnswered();
        if (line.trim() === '*') throw bad('Authentication cancelled');
        response = line.trim();
      }
      const decoded = Buffer.from(response === '=' ? '' : response, 'base64').toString('utf8');
      const parts = decoded.split('\u0000');
      if (parts.length !== 3) throw bad('Malformed PLAIN response');
      const [authzid, user, password] = parts;
      // Acting as another user (an authorisation identity of its own) is not offered.
      if (authzid !== '' && authzid !== user) throw no('Invalid credentials', 'AUTHORIZATIONFAILED');
      return login(session, user, password);
    },
  },
  ENABLE: {
    states: AUTHENTICATED,
    async run(session, command) {
      const wanted = parseEnable(command.args).filter((c) => ENABLEABLE.has(c) && !session.enabled.has(c));
      for (const c of wanted) session.enabled.add(c);
      if (wanted.includes('QRESYNC')) session.enabled.add('CONDSTORE');
      session.write(`* ENABLED${wanted.map((c) => ` ${c}`).join('')}\r\n`);
    },
  },
  ID: {
    states: ANY,
    async run(session, command) {
      parseId(command.args);
      session.write(`* ID ("name" "Mailroom" "version" "${session.options.version}")\r\n`);
    },
  },
  NAMESPACE: {
    states: AUTHENTICATED,
    async run(session) {
      session.write('* NAMESPACE (("" "/")) NIL NIL\r\n');
    },
  },
  COMPRESS: {
    states: AUTHENTICATED,
    async run(session, command) {
      const mechanism = command.args[0]?.type === 'atom' ? command.args[0].value.toUpperCase() : '';
      if (mechanism !== 'DEFLATE' || command.args.length !== 1) throw bad('COMPRESS takes DEFLATE');
      if (!session.capabilities().includes('COMPRESS=DEFLATE'))
        throw no('Already compressing', 'COMPRESSIONACTIVE');
      session.write(`${command.tag} OK DEFLATE active\r\n`);
      session.flush();
      session.startCompression();
      throw new AlreadyAnswered();
    },
  },
  IDLE: {
    states: AUTHENTICATED,
    noSync: true,
    async run(session) {
      await session.idle();
      return 'IDLE terminated';
    },
  },
  GETQUOTAROOT: {
    states: AUTHENTICATED,
    async run(session, command) {
      if (command.args.length !== 1) throw bad('GETQUOTAROOT takes a folder name');
      const name = stringOf(command.args[0]);
      session.write(`* QUOTAROOT ${quoteAString(name, session.utf8)} ""\r\n`);
      await writeQuota(session);
    },
  },
  GETQUOTA: {
    states: AUTHENTICATED,
    async run(session, command) {
      if (command.args.length !== 1 || stringOf(command.args[0]) !== '')
        throw no('No such quota root', 'NONEXISTENT');
      await writeQuota(session);
    },
  },
  SETQUOTA: {
    states: AUTHENTICATED,
    async run() {
      throw no('Quotas are set by an administrator', 'NOPERM');
    },
  },
};

async function login(session: ImapSession, user: string, password: string): Promise<string> {
  const result = await session.backend.authenticate(user, password, session.remoteAddress, session.id);
  if (!result.ok) {
    if (result.limited) throw no('Too many failed logins; try again later', 'UNAVAILABLE');
    throw no('Invalid credentials', 'AUTHENTICATIONFAILED');
  }
  if (result.identity.kind !== 'mailbox') throw no('Invalid credentials', 'AUTHENTICATIONFAILED');
  session.loggedIn({
    organizationId: result.identity.organizationId,
    mailboxId: result.identity.mailboxId,
    address: result.identity.address,
  });
  session.log.info({ mailbox_id: result.identity.mailboxId }, 'IMAP login');
  return `[CAPABILITY ${session.capabilities().join(' ')}] Logged in`;
}

async function writeQuota(session: ImapSession): Promise<void> {
  const { usedBytes, quotaBytes } = await session.backend.quota(
    session.user!.organizationId,
    session.user!.mailboxId,
  );
  session.write(`* QUOTA "" (STORAGE ${Math.ceil(usedBytes / 1024)} ${Math.floor(quotaBytes / 1024)})\r\n`);
}

/** An astring argument as text. */
export function stringOf(token: Command['args'][number]): string {
  if (token.type === 'atom') return token.value;
  if (token.type === 'string') return token.value.toString('utf8');
  throw bad('Expected a string');
}

export const COMMANDS: Record<string, CommandHandler> = {
  ...SESSION_COMMANDS,
  ...FOLDER_COMMANDS,
  ...MESSAGE_COMMANDS,
};
