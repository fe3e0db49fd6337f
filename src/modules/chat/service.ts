// Mail chat: a person's request in their own words ("what did Alice send me about the invoice last
// week?") is parsed into an intent with its parameters (./intent), run against the mail the caller may
// read, and answered with the messages it rests on as citations. The steps of a turn:
//   scope      whose mail: the caller's own mailboxes and accounts, or the one named (admins, API keys)
//   parse      the grammar, told the caller's addresses and the people they correspond with
//   resolve    names to addresses, folder names to folders, topics to a full-text query
//   run        the intent: search, summarise, sentiment, analytics, a reply draft, or help
//   write      with the model when one is configured, the request allows it and the organisation's
//              daily token budget has room; else (or when the model fails) from the mail itself
//   record     the turn, for the caller's history
// Answers are worked out outside any transaction (a model can take seconds); the turn is one insert.
import type { Logger } from 'pino';
import { type Role, roleAtLeast } from '../../core/auth.ts';
import { TtlCache } from '../../core/cache.ts';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type Page, type PageRequest, toPage } from '../../core/pagination.ts';
import type { LlmCompletion } from '../../providers/llm/openai-compatible.ts';
import { LlmError, type LlmMessage } from '../../providers/llm/types.ts';
import { BUILT_IN_CATEGORIES } from '../intelligence/understanding/category.ts';
import { detectLanguage } from '../intelligence/understanding/language.ts';
import { analyzeSentiment, sentimentLabel } from '../intelligence/understanding/sentiment.ts';
import { summarizeThread } from '../intelligence/understanding/summary.ts';
import { extractBodyText } from '../intelligence/understanding/text.ts';
import {
  baseSubject,
  citationOf,
  duration,
  estimateTokens,
  groundedPrompt,
  isTimeZone,
  listed,
  localDates,
  type ModelTask,
  nameMatches,
  nameQuery,
  PROMPT_MESSAGES,
  plural,
  readModelAnswer,
  readModelDraft,
  replySubject,
  shortName,
  templateReply,
  topicQuery,
} from './answers.ts';
import {
  type Intent,
  type Metric,
  type PersonRole,
  parseRequest,
  type RequestParams,
} from './intent/index.ts';
import * as store from './store.ts';
import type { AnsweredBy, ChatTurnRow, Citation, LlmOutcome } from './tables.ts';

/** Who is asking. A user's role decides whether they may name someone else's mailbox. */
export type Asker = { kind: 'user'; userId: string; role: Role } | { kind: 'api_key'; keyId: string };

export interface ChatInput {
  text: string;
  /** Chat about this mailbox (owners, admins and API keys; members and viewers: only their own). */
  mailbox_id?: string;
  /** Chat about this external account (the same rule: its creator, or an owner or admin). */
  account_id?: string;
  /** The asker's time zone, for "yesterday" and "last week" (IANA name); UTC when left out. */
  time_zone?: string;
  /** False: answer without the model even when one is configured. */
  use_llm?: boolean;
}

/** The model as chat uses it: a reply, with the tokens it cost when the endpoint says. */
export interface ChatModel {
  completion(messages: LlmMessage[]): Promise<LlmCompletion>;
}

export interface ChatOptions {
  db: Db;
  clock: Clock;
  /** The configured model, or null: every answer is written from the mail itself. */
  llm: ChatModel | null;
  /** Tokens an organisation may spend a UTC day, unless its intelligence settings say otherwise. */
  dailyTokens: number;
  log: Logger;
}

export interface PersonView {
  text: string;
  role: PersonRole;
  /** The addresses the person was resolved to (a name may match several correspondents). */
  addresses: string[];
  /** Whole domains ("mail from stripe.com"). */
  domains: string[];
}

export interface ParamsView {
  people: PersonView[];
  after: string | null;
  before: string | null;
  date_text: string | null;
  topics: string[];
  folder: string | null;
  unread: boolean | null;
  flagged: boolean | null;
  has_attachment: boolean | null;
  direction: 'received' | 'sent' | null;
  metric: Metric | null;
  limit: number | null;
  reply_instruction: string | null;
  /** The topics that named a category of the mail analysis rather than words to search for. */
  category: string | null;
}

export interface SentimentData {
  average: number;
  label: 'negative' | 'neutral' | 'positive';
  counts: { positive: number; neutral: number; negative: number };
  messages: {
    message_id: string;
    score: number;
    label: 'negative' | 'neutral' | 'positive';
    /** analysis: the analysis worker's result; computed: worked out now (not analysed yet). */
    source: 'analysis' | 'computed';
  }[];
}

export interface AnalyticsData {
  metric: Metric;
  /** The window the figures cover. */
  after: string | null;
  before: string | null;
  count?: number;
  senders?: { address: string; name: string | null; messages: number }[];
  response_time?: {
    median_seconds: number | null;
    mean_seconds: number | null;
    answered: number;
    received: number;
  };
  days?: { date: string; messages: number }[];
}

export interface DraftData {
  to: string[];
  cc: string[];
  subject: string;
  body: string;
  /** The message replied to. */
  in_reply_to: string;
  /** Its Message-ID (`<…>`), for the draft's In-Reply-To and References headers. */
  in_reply_to_header: string | null;
}

export interface ChatAnswer {
  turn_id: string;
  text: string;
  intent: Intent;
  confidence: number;
  params: ParamsView;
  /** What was looked for, in words ("from Alice Smith <alice@…>, last week, about “invoice”"). */
  description: string;
  answer: string;
  answered_by: AnsweredBy;
  /** What became of the model; null where the intent never uses one. */
  llm: LlmOutcome | null;
  citations: Citation[];
  /** Messages that matched (a search counts up to SEARCH_COUNT_CAP: that many means at least that many). */
  total: number | null;
  sentiment: SentimentData | null;
  analytics: AnalyticsData | null;
  draft: DraftData | null;
  suggestions: string[];
  mailbox_id: string | null;
  account_id: string | null;
  created_at: string;
}

export interface Suggestion {
  text: string;
  intent: Intent;
  reason: 'frequent_correspondent' | 'unanswered' | 'category' | 'unread' | 'general';
}

const DAY_MS = 86_400_000;
/** Messages listed in a search answer, unless the request asks for another number. */
const SEARCH_LIMIT = 10;
const MAX_LIMIT = 50;
/** Matches counted at most per search; at that many the answer says "at least". */
export const SEARCH_COUNT_CAP = 100;
const SUMMARY_MESSAGES = 20;
const THREAD_MESSAGES = 50;
const SENTIMENT_MESSAGES = 50;
const TOP_SENDERS = 5;
const DEFAULT_ANALYTICS_DAYS = 30;
const DEFAULT_VOLUME_DAYS = 14;
const MAX_VOLUME_DAYS = 366;
/** The recent window a full-text search tries first (see Turn.#matches). */
const RECENT_WINDOW_DAYS = 60;
/** Replies later than this after the window's end are not looked for. */
const REPLY_HORIZON_DAYS = 30;
/** Tokens set aside for the model's reply until its real cost is known. */
const REPLY_TOKENS = 600;
/** Correspondents the parser is told about, and the recent copies per folder they are taken from. */
const KNOWN_PEOPLE = 500;
const KNOWN_PEOPLE_SAMPLE = 500;
/** Matches of a name read to tell who it is. */
const NAME_SAMPLE = 500;
const MAX_SUGGESTIONS = 8;
/** Recent received messages looked at for ones still unanswered. */
const UNANSWERED_SAMPLE = 50;

/** Special-use folders outside "my mail" unless named: spam, deleted mail, unsent drafts. */
const EXCLUDED_USES = new Set(['\\junk', '\\trash', '\\drafts']);
const EXCLUDED_NAMES =
  /^(?:junk|spam|junk e-?mail|bulk mail|trash|bin|deleted(?: items| messages)?|drafts?)$/i;
/** What people call the special-use folders. */
const FOLDER_USES: Record<string, string> = {
  inbox: '\\inbox',
  sent: '\\sent',
  'sent items': '\\sent',
  'sent mail': '\\sent',
  'sent messages': '\\sent',
  outbox: '\\sent',
  drafts: '\\drafts',
  draft: '\\drafts',
  junk: '\\junk',
  spam: '\\junk',
  'junk mail': '\\junk',
  trash: '\\trash',
  bin: '\\trash',
  deleted: '\\trash',
  'deleted items': '\\trash',
  archive: '\\archive',
  archived: '\\archive',
  'all mail': '\\all',
  starred: '\\flagged',
  important: '\\important',
};
/** Requests that ask for a thread as a whole rather than for the matching messages. */
const THREAD_WORDS = /\b(?:thread|threads|conversation|conversations|discussion|exchange|back and forth)\b/i;

interface Scope {
  organizationId: string;
  mailboxes: store.ScopeMailbox[];
  accounts: store.ScopeAccount[];
  /** The scope's own addresses, lower case. */
  self: string[];
  folders: store.ScopeFolder[];
  /** Who signs reply drafts. */
  signer: string | null;
  named: { mailboxId: string | null; accountId: string | null };
}

interface Resolved {
  people: PersonView[];
  /** People who could not be found in the mail. */
  unknown: string[];
  folderIds: string[] | null;
  /** The folder named and not found. */
  missingFolder: string | null;
  tsquery: string | undefined;
  topics: string[];
  category: string | null;
}

interface Outcome {
  answer: string;
  answeredBy: AnsweredBy;
  llm: LlmOutcome | null;
  citations: Citation[];
  total: number | null;
  sentiment?: SentimentData;
  analytics?: AnalyticsData;
  draft?: DraftData;
  suggestions?: string[];
}

/** A model's text, or why there is none. */
interface Written {
  text: string | null;
  outcome: LlmOutcome;
}

export class ChatService {
  readonly #o: ChatOptions;
  /** The people each scope corresponds with, for the parser (a few minutes old at most). */
  readonly #people = new TtlCache<store.Correspondent[]>(5 * 60_000, 1_000);

  constructor(options: ChatOptions) {
    this.#o = options;
  }

  // ---- a turn -------------------------------------------------------------------------------------

  async ask(organizationId: string, asker: Asker, input: ChatInput): Promise<ChatAnswer> {
    const timeZone = input.time_zone ?? 'UTC';
    if (!isTimeZone(timeZone))
      throw validationFailed('time_zone', 'not a time zone (an IANA name such as Europe/Berlin)');
    const scope = await this.#scope(organizationId, asker, input);
    const known = await this.#correspondents(scope);
    const now = this.#o.clock.now();
    const parsed = parseRequest(input.text, {
      now,
      timeZone,
      selfAddresses: scope.self,
      knownPeople: known.flatMap((p) => (p.name ? [{ name: p.name, address: p.address }] : [])),
    });
    const params = parsed.params;
    const resolved = await this.#resolve(scope, params, known);
    const view = paramsView(params, resolved);
    const description = describe(view, params);
    const run = new Turn(this, scope, params, resolved, view, description, input, timeZone, now);
    const outcome = await run.answer(parsed.intent);

    const row = await store.insertTurn(this.#o.db, {
      id: newId(),
      organizationId,
      userId: asker.kind === 'user' ? asker.userId : null,
      apiKeyId: asker.kind === 'api_key' ? asker.keyId : null,
      mailboxId: scope.named.mailboxId,
      accountId: scope.named.accountId,
      text: input.text,
      intent: parsed.intent,
      confidence: parsed.confidence,
      params: { ...view, description } as unknown as Record<string, unknown>,
      answer: outcome.answer,
      answeredBy: outcome.answeredBy,
      llm: outcome.llm,
      citations: outcome.citations,
      data: {
        total: outcome.total,
        sentiment: outcome.sentiment ?? null,
        analytics: outcome.analytics ?? null,
        draft: outcome.draft ?? null,
        suggestions: outcome.suggestions ?? [],
      },
    });
    return answerOf(row);
  }

  /** The caller's own turns in the organisation, newest first. */
  async history(organizationId: string, asker: Asker, page: PageRequest): Promise<Page<ChatAnswer>> {
    const owner = asker.kind === 'user' ? { userId: asker.userId } : { apiKeyId: asker.keyId };
    const { rows, total } = await store.turns(this.#o.db, organizationId, owner, page);
    return toPage(rows.map(answerOf), total, page);
  }

  /** Things to ask, from the caller's own mail: frequent correspondents, unanswered mail, categories. */
  async suggestions(
    organizationId: string,
    asker: Asker,
    input: Pick<ChatInput, 'mailbox_id' | 'account_id'>,
  ): Promise<Suggestion[]> {
    return this.#suggestionsFor(await this.#scope(organizationId, asker, input));
  }

  // ---- whose mail ---------------------------------------------------------------------------------

  async #scope(organizationId: string, asker: Asker, input: Pick<ChatInput, 'mailbox_id' | 'account_id'>) {
    const named = { mailboxId: input.mailbox_id ?? null, accountId: input.account_id ?? null };
    const own = !named.mailboxId && !named.accountId;
    if (own && asker.kind === 'api_key')
      throw validationFailed(
        'mailbox_id',
        'an API key has no mail of its own: name the mailbox (mailbox_id) or the external account (account_id)',
      );
    const rows = await store.scope(this.#o.db, organizationId, {
      userId: asker.kind === 'user' ? asker.userId : null,
      own,
      ...named,
    });
    const { user, mailboxes, accounts } = rows;
    if (!own) {
      // Another's mailbox or account is not there as far as a member or viewer can tell.
      const mayReadAny = asker.kind === 'api_key' || roleAtLeast(asker.role, 'admin');
      const [mailbox] = mailboxes;
      const [account] = accounts;
      const ownMailbox = mailbox && user && mailbox.address.toLowerCase() === user.email.toLowerCase();
      const ownAccount = account && asker.kind === 'user' && account.created_by === asker.userId;
      if (named.mailboxId && (!mailbox || !(mayReadAny || ownMailbox))) throw notFound('Mailbox');
      if (named.accountId && (!account || !(mayReadAny || ownAccount))) throw notFound('Account');
    }
    const self = new Set([...mailboxes, ...accounts].map((x) => x.address.toLowerCase()));
    if (user && own) self.add(user.email.toLowerCase());
    return {
      organizationId,
      mailboxes,
      accounts,
      self: [...self],
      folders: rows.folders,
      signer: (own ? user?.name : null) || mailboxes[0]?.display_name || accounts[0]?.name || null,
      named,
    } satisfies Scope;
  }

  /** Folders outside the default scope: Junk, Trash and Drafts. */
  #excluded(scope: Scope): string[] {
    return scope.folders
      .filter((f) =>
        f.special_use
          ? EXCLUDED_USES.has(f.special_use.toLowerCase())
          : EXCLUDED_NAMES.test(lastSegment(f.name)),
      )
      .map((f) => f.id);
  }

  #correspondents(scope: Scope): Promise<store.Correspondent[]> {
    if (!scope.mailboxes.length && !scope.accounts.length) return Promise.resolve([]);
    const excluded = new Set(this.#excluded(scope));
    const folderIds = scope.folders
      .filter((f) => f.kind === 'mailbox' && !excluded.has(f.id))
      .map((f) => f.id);
    const key = `${scope.organizationId}:${folderIds.join(',')}:${scope.accounts.map((a) => a.id).join(',')}`;
    return this.#people
      .get(key, () =>
        store.correspondents(
          this.#o.db,
          scope.organizationId,
          folderIds,
          scope.accounts.map((a) => a.id),
          KNOWN_PEOPLE_SAMPLE,
          KNOWN_PEOPLE,
        ),
      )
      .then((people) => people.filter((p) => !scope.self.includes(p.address)));
  }

  // ---- resolving ----------------------------------------------------------------------------------

  async #resolve(scope: Scope, params: RequestParams, known: store.Correspondent[]): Promise<Resolved> {
    const people: PersonView[] = [];
    const unknown: string[] = [];
    for (const person of params.people) {
      const view: PersonView = { text: person.text, role: person.role, addresses: [], domains: [] };
      if (person.address) {
        const address = person.address.toLowerCase();
        if (address.includes('@')) view.addresses.push(address);
        else view.domains.push(address.replace(/^@/, ''));
      } else {
        view.addresses = await this.#addressesNamed(scope, person.text, person.role, known);
        if (!view.addresses.length) unknown.push(person.text);
      }
      people.push(view);
    }

    let folderIds: string[] | null = null;
    let missingFolder: string | null = null;
    if (params.folder) {
      const found = foldersNamed(scope.folders, params.folder);
      if (found.length) folderIds = found.map((f) => f.id);
      else missingFolder = params.folder;
    }

    // A topic that names a category of the analysis ("promotions") filters by it instead of by words.
    let category: string | null = null;
    let topics = params.topics;
    const categories = new Set<string>(BUILT_IN_CATEGORIES);
    const named = topics.find((t) => categories.has(singularCategory(t)));
    if (named !== undefined) {
      category = singularCategory(named);
      topics = topics.filter((t) => t !== named);
    }
    return {
      people,
      unknown,
      folderIds,
      missingFolder,
      tsquery: topicQuery(topics) ?? undefined,
      topics,
      category,
    };
  }

  /**
   * The addresses a name stands for: correspondents whose display name (or address) it matches, else the
   * senders and recipients of the scope's mail that mentions the name, most frequent first.
   */
  async #addressesNamed(
    scope: Scope,
    name: string,
    role: PersonRole,
    known: store.Correspondent[],
  ): Promise<string[]> {
    const fromKnown = known.filter((p) => nameMatches(name, p.name, p.address)).map((p) => p.address);
    if (fromKnown.length) return fromKnown.slice(0, 5);
    const words = nameQuery(name);
    if (!words) return [];
    const found = await store.peopleNamed(this.#o.db, this.scopeFilter(scope), words, NAME_SAMPLE);
    const wanted = found
      .filter((p) => !scope.self.includes(p.address))
      .filter((p) => (p.side === 'to' ? role !== 'from' : true))
      .filter((p) => nameMatches(name, p.name, p.address))
      .sort((a, b) => b.messages - a.messages);
    return [...new Set(wanted.map((p) => p.address))].slice(0, 5);
  }

  // ---- filters ------------------------------------------------------------------------------------

  /** The whole scope, Junk, Trash and Drafts left out. */
  scopeFilter(scope: Scope): store.MailFilter {
    return {
      organizationId: scope.organizationId,
      mailboxIds: scope.mailboxes.map((m) => m.id),
      accountIds: scope.accounts.map((a) => a.id),
      folderIds: null,
      excludedFolderIds: this.#excluded(scope),
      senders: [],
      recipients: [],
      participants: [],
      self: scope.self,
    };
  }

  /** The request's filter: its people, dates, words, folder and flags. */
  filterOf(scope: Scope, params: RequestParams, resolved: Resolved): store.MailFilter {
    const sets = (role: PersonRole) =>
      resolved.people
        .filter((p) => p.role === role)
        .map((p) => ({ addresses: p.addresses, domains: p.domains }));
    return {
      ...this.scopeFilter(scope),
      folderIds: resolved.folderIds,
      unread: params.unread,
      flagged: params.flagged,
      senders: sets('from'),
      recipients: sets('to'),
      participants: sets('any'),
      direction: params.direction,
      after: params.after ? new Date(params.after) : undefined,
      before: params.before ? new Date(params.before) : undefined,
      tsquery: resolved.tsquery,
      hasAttachment: params.hasAttachment,
      category: resolved.category ?? undefined,
    };
  }

  get db(): Db {
    return this.#o.db;
  }

  // ---- the model ----------------------------------------------------------------------------------

  /**
   * The model's text for a grounded request, within the organisation's daily budget: the prompt's
   * estimate and room for the reply are taken from the day's budget first (atomically), then corrected
   * to what the endpoint reports it spent (or the estimate of prompt and reply when it reports
   * nothing). A failed request gives its reservation back, except after a timeout: the model may have
   * worked (and billed) all the same, so the prompt stays counted.
   */
  async write(organizationId: string, messages: LlmMessage[], useLlm: boolean): Promise<Written> {
    const llm = this.#o.llm;
    if (!llm) return { text: null, outcome: 'not_configured' };
    if (!useLlm) return { text: null, outcome: 'not_requested' };
    const db = this.#o.db;
    const promptTokens = estimateTokens(messages.reduce((n, m) => n + m.content.length, 0));
    const reserved = promptTokens + REPLY_TOKENS;
    const budget = (await store.dailyTokenBudget(db, organizationId)) ?? this.#o.dailyTokens;
    const day = this.#o.clock.now().toISOString().slice(0, 10);
    if (!(await store.reserveTokens(db, organizationId, day, reserved, budget)))
      return { text: null, outcome: 'budget_exhausted' };
    try {
      const completion = await llm.completion(messages);
      const spent = completion.totalTokens ?? promptTokens + estimateTokens(completion.content.length);
      await store.adjustTokens(db, organizationId, day, spent - reserved);
      return { text: completion.content, outcome: 'used' };
    } catch (err) {
      const timeout = err instanceof LlmError && err.code === 'llm_timeout';
      await store.adjustTokens(db, organizationId, day, (timeout ? promptTokens : 0) - reserved);
      // The model is an improvement, not a dependency: the answer from the mail stands in.
      this.#o.log.warn(
        { code: (err as { code?: string }).code, reason: (err as Error).message },
        'chat: the model failed; answering from the mail',
      );
      return { text: null, outcome: timeout ? 'timeout' : 'error' };
    }
  }

  // ---- suggestions --------------------------------------------------------------------------------

  async #suggestionsFor(scope: Scope): Promise<Suggestion[]> {
    const out: Suggestion[] = [];
    const add = (s: Suggestion) => {
      if (out.length < MAX_SUGGESTIONS && !out.some((o) => o.text === s.text)) out.push(s);
    };
    if (scope.mailboxes.length || scope.accounts.length) {
      const db = this.#o.db;
      const now = this.#o.clock.now();
      const base = this.scopeFilter(scope);
      const received: store.MailFilter = { ...base, direction: 'received' };
      const recent = (days: number) => new Date(now.getTime() - days * DAY_MS);
      const inbox = foldersNamed(scope.folders, 'inbox').map((f) => f.id);
      const [frequent, waiting, categories, unread] = await Promise.all([
        this.#correspondents(scope),
        store.unanswered(
          db,
          { ...received, after: recent(14), folderIds: inbox.length ? inbox : null },
          { ...base, direction: 'sent', after: recent(14) },
          UNANSWERED_SAMPLE,
          2,
        ),
        store.categories(db, { ...received, after: recent(30) }, 500),
        inbox.length ? store.matches(db, { ...base, folderIds: inbox, unread: true }, 1, 1) : null,
      ]);
      for (const m of waiting) {
        const who = m.from_name || m.from_address;
        const subject = baseSubjectText(m.subject);
        if (who)
          add({
            text: subject ? `Reply to ${who} about “${subject}”` : `Reply to ${who}`,
            intent: 'compose_reply',
            reason: 'unanswered',
          });
      }
      for (const sender of frequent.slice(0, 2)) {
        const who = sender.name || sender.address;
        add({ text: `Show emails from ${who}`, intent: 'search', reason: 'frequent_correspondent' });
        add({
          text: `Summarise my emails from ${who} this month`,
          intent: 'summarize',
          reason: 'frequent_correspondent',
        });
      }
      if (unread?.rows.length)
        add({ text: 'Show unread emails in my inbox', intent: 'search', reason: 'unread' });
      for (const c of categories.filter((c) => c.category !== 'primary').slice(0, 2))
        add({
          text: `Show ${c.category} emails from the last 30 days`,
          intent: 'search',
          reason: 'category',
        });
    }
    add({ text: 'Who emails me the most this month?', intent: 'analytics', reason: 'general' });
    add({ text: 'How many emails did I get last week?', intent: 'analytics', reason: 'general' });
    add({ text: 'What is my average response time?', intent: 'analytics', reason: 'general' });
    return out;
  }

  suggestionsOf(scope: Scope): Promise<Suggestion[]> {
    return this.#suggestionsFor(scope);
  }
}

/** One request being answered: the intent's own steps over the resolved request. */
class Turn {
  readonly #chat: ChatService;
  readonly #scope: Scope;
  readonly #params: RequestParams;
  readonly #resolved: Resolved;
  readonly #view: ParamsView;
  readonly #description: string;
  readonly #input: ChatInput;
  readonly #timeZone: string;
  readonly #now: Date;

  constructor(
    chat: ChatService,
    scope: Scope,
    params: RequestParams,
    resolved: Resolved,
    view: ParamsView,
    description: string,
    input: ChatInput,
    timeZone: string,
    now: Date,
  ) {
    this.#chat = chat;
    this.#scope = scope;
    this.#params = params;
    this.#resolved = resolved;
    this.#view = view;
    this.#description = description;
    this.#input = input;
    this.#timeZone = timeZone;
    this.#now = now;
  }

  get #db(): Db {
    return this.#chat.db;
  }

  get #filter(): store.MailFilter {
    return this.#chat.filterOf(this.#scope, this.#params, this.#resolved);
  }

  async answer(intent: Intent): Promise<Outcome> {
    if (intent === 'smalltalk' || intent === 'unknown') return this.#help(intent);
    const nothing = this.#nothingToRead();
    if (nothing) return nothing;
    switch (intent) {
      case 'search':
        return this.#search();
      case 'summarize':
        return this.#summarize();
      case 'sentiment':
        return this.#sentiment();
      case 'analytics':
        return this.#analytics(this.#params.metric ?? 'count');
      case 'compose_reply':
        return this.#composeReply();
    }
  }

  /** An answer without a query when the request cannot match anything: no mail, nobody, no folder. */
  #nothingToRead(): Outcome | null {
    let answer: string | null = null;
    if (!this.#scope.mailboxes.length && !this.#scope.accounts.length)
      answer =
        'You have no mailbox or connected account in this organisation to chat about: your mailbox is the one at your sign-in address, and accounts are the ones you connected.';
    else if (this.#resolved.unknown.length)
      answer = `I could not find ${this.#resolved.unknown.map((n) => `“${n}”`).join(' or ')} among the people in your mail.`;
    else if (this.#resolved.missingFolder)
      answer = `You have no folder called “${this.#resolved.missingFolder}”.`;
    return answer ? { answer, answeredBy: 'template', llm: null, citations: [], total: 0 } : null;
  }

  #about(): string {
    return this.#description ? ` ${this.#description}` : '';
  }

  #cite(rows: store.MessageRow[]): Citation[] {
    return rows.map((m) => citationOf(m, this.#resolved.topics));
  }

  /**
   * The newest `limit` matches, counted up to `cap`. A full-text query is run over the recent window
   * first: when the window alone holds `cap` matches, they are the newest `cap` of all (anything outside
   * is older) and the older mail is never read; otherwise the older mail is searched for the rest. The
   * full-text index finds every match and each is read from the table to be sorted by date, so a
   * common word costs a row per match; the window bounds them, and the two parts together read no more
   * rows than one query over everything.
   */
  async #matches(filter: store.MailFilter, limit: number, cap: number) {
    const windowStart = new Date(this.#now.getTime() - RECENT_WINDOW_DAYS * DAY_MS);
    const split =
      filter.tsquery !== undefined &&
      (!filter.after || filter.after < windowStart) &&
      (!filter.before || filter.before > windowStart);
    if (!split) return store.matches(this.#db, filter, limit, cap);
    const recent = await store.matches(this.#db, { ...filter, after: windowStart }, limit, cap);
    if (recent.total >= cap) return recent;
    const wanted = limit - recent.rows.length;
    const older = await store.matches(
      this.#db,
      { ...filter, before: windowStart },
      Math.max(1, wanted),
      cap - recent.total,
    );
    return {
      rows: [...recent.rows, ...older.rows.slice(0, Math.max(0, wanted))],
      total: recent.total + older.total,
    };
  }

  #limit(fallback: number): number {
    return Math.min(MAX_LIMIT, Math.max(1, this.#params.limit ?? fallback));
  }

  async #search(): Promise<Outcome> {
    const found = await this.#matches(this.#filter, this.#limit(SEARCH_LIMIT), SEARCH_COUNT_CAP);
    const citations = this.#cite(found.rows);
    if (!found.rows.length)
      return {
        answer: `I found no messages${this.#about()}.`,
        answeredBy: 'extractive',
        llm: null,
        citations,
        total: 0,
      };
    const counted =
      found.total >= SEARCH_COUNT_CAP
        ? `at least ${SEARCH_COUNT_CAP} messages`
        : plural(found.total, 'message');
    const newest = found.total > found.rows.length ? `; the newest ${found.rows.length}` : '';
    const extractive = `I found ${counted}${this.#about()}${newest}:\n${listed(found.rows, this.#timeZone)}`;
    const written = await this.#write('answer', found.rows);
    const read = written.text
      ? readModelAnswer(written.text, Math.min(found.rows.length, PROMPT_MESSAGES))
      : null;
    return {
      answer: read?.text ?? extractive,
      answeredBy: read ? 'llm' : 'extractive',
      llm: written.outcome === 'used' && !read ? 'no_answer' : written.outcome,
      citations,
      total: found.total,
    };
  }

  async #summarize(): Promise<Outcome> {
    const found = await this.#matches(this.#filter, this.#limit(SUMMARY_MESSAGES), SEARCH_COUNT_CAP);
    if (!found.rows.length)
      return {
        answer: `I found nothing to summarise${this.#about()}.`,
        answeredBy: 'extractive',
        llm: null,
        citations: [],
        total: 0,
      };
    let messages = [...found.rows].reverse();
    let what = `${plural(found.rows.length, 'message')}${this.#about()}`;
    if (THREAD_WORDS.test(this.#input.text)) {
      const newest = found.rows[0]!;
      const subject = baseSubject(newest.subject);
      messages = await store.thread(
        this.#db,
        this.#chat.scopeFilter(this.#scope),
        newest.thread_id,
        subject,
        topicQuery([subject]),
        THREAD_MESSAGES,
      );
      if (!messages.length) messages = [newest];
      what = `the thread “${newest.subject || '(no subject)'}” (${plural(messages.length, 'message')})`;
    }
    const lines = summarizeThread(
      messages.map((m) => ({ from: shortName(m), date: m.received_at, text: m.body })),
    );
    const extractive = `Summary of ${what}:\n${lines || listed([...messages].reverse(), this.#timeZone)}`;
    const written = await this.#write('summarize', [...messages].reverse());
    const read = written.text
      ? readModelAnswer(written.text, Math.min(messages.length, PROMPT_MESSAGES))
      : null;
    return {
      answer: read?.text ?? extractive,
      answeredBy: read ? 'llm' : 'extractive',
      llm: written.outcome === 'used' && !read ? 'no_answer' : written.outcome,
      citations: this.#cite([...messages].reverse()),
      total: messages.length,
    };
  }

  async #sentiment(): Promise<Outcome> {
    const found = await this.#matches(this.#filter, this.#limit(SENTIMENT_MESSAGES), SEARCH_COUNT_CAP);
    const citations = this.#cite(found.rows);
    if (!found.rows.length)
      return {
        answer: `I found no messages${this.#about()} to read the tone of.`,
        answeredBy: 'extractive',
        llm: null,
        citations,
        total: 0,
      };
    const analysed = new Map(
      (
        await store.analyses(
          this.#db,
          this.#scope.organizationId,
          found.rows.map((m) => m.id),
        )
      ).map((a) => [a.message_id, a]),
    );
    const messages = found.rows.map((m) => {
      const analysis = analysed.get(m.id);
      if (analysis)
        return {
          message_id: m.id,
          score: analysis.sentiment,
          label: analysis.sentiment_label,
          source: 'analysis' as const,
        };
      const text = extractBodyText(`${m.subject ?? ''}\n\n${m.body}`).text;
      const language = detectLanguage(text).code;
      // Too short to tell the language: English, the one language with a sentiment lexicon.
      const result = analyzeSentiment(text, language === 'und' ? 'en' : language);
      return { message_id: m.id, score: result.score, label: result.label, source: 'computed' as const };
    });
    const average = Math.round((messages.reduce((s, m) => s + m.score, 0) / messages.length) * 1000) / 1000;
    const counts = { positive: 0, neutral: 0, negative: 0 };
    for (const m of messages) counts[m.label]++;
    const label = sentimentLabel(average);
    const lowest = messages.reduce((a, b) => (b.score < a.score ? b : a));
    const lowestRow = found.rows.find((m) => m.id === lowest.message_id)!;
    const answer =
      `Across ${plural(messages.length, 'message')}${this.#about()} the tone is ${label} on average ` +
      `(${average >= 0 ? '+' : ''}${average.toFixed(2)} on a scale from -1 to +1): ` +
      `${counts.positive} positive, ${counts.neutral} neutral, ${counts.negative} negative.` +
      (lowest.label === 'negative'
        ? ` The most negative is “${lowestRow.subject || '(no subject)'}” from ${shortName(lowestRow)}.`
        : '');
    return {
      answer,
      answeredBy: 'extractive',
      llm: null,
      citations,
      total: found.total,
      sentiment: { average, label, counts, messages },
    };
  }

  /** The request's window, or the last `days` days when it gives none. */
  #window(days: number): { after: Date; before: Date; defaulted: boolean } {
    const before = this.#params.before ? new Date(this.#params.before) : this.#now;
    const after = this.#params.after
      ? new Date(this.#params.after)
      : new Date(before.getTime() - days * DAY_MS);
    return { after, before, defaulted: !this.#params.after };
  }

  async #analytics(metric: Metric): Promise<Outcome> {
    const filter = this.#filter;
    const about = this.#about();
    switch (metric) {
      case 'count': {
        const [n, newest] = await Promise.all([store.count(this.#db, filter), this.#matches(filter, 5, 5)]);
        return {
          answer: `${n === 0 ? 'You have no messages' : `You have ${plural(n, 'message')}`}${about}.`,
          answeredBy: 'extractive',
          llm: null,
          citations: this.#cite(newest.rows),
          total: n,
          analytics: { metric, after: this.#view.after, before: this.#view.before, count: n },
        };
      }
      case 'top_senders': {
        const window = this.#window(DEFAULT_ANALYTICS_DAYS);
        const senders = await store.topSenders(
          this.#db,
          {
            ...filter,
            direction: filter.direction ?? 'received',
            after: window.after,
            before: window.before,
          },
          this.#limit(TOP_SENDERS),
        );
        const since = window.defaulted ? ` in the last ${DEFAULT_ANALYTICS_DAYS} days` : '';
        const newest = await store.byIds(
          this.#db,
          filter,
          senders.map((s) => s.last_message_id),
        );
        const order = new Map(senders.map((s, i) => [s.last_message_id, i]));
        newest.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
        const answer = senders.length
          ? `Who wrote to you most${about}${since}:\n${senders
              .map(
                (s, i) =>
                  `${i + 1}. ${s.name ? `${s.name} <${s.address}>` : s.address} — ${plural(s.messages, 'message')}`,
              )
              .join('\n')}`
          : `Nobody wrote to you${about}${since}.`;
        return {
          answer,
          answeredBy: 'extractive',
          llm: null,
          citations: this.#cite(newest),
          total: senders.reduce((n, s) => n + s.messages, 0),
          analytics: {
            metric,
            after: window.after.toISOString(),
            before: window.before.toISOString(),
            senders: senders.map(({ address, name, messages }) => ({ address, name, messages })),
          },
        };
      }
      case 'response_time': {
        const window = this.#window(DEFAULT_ANALYTICS_DAYS);
        const received: store.MailFilter = {
          ...filter,
          direction: 'received',
          after: window.after,
          before: window.before,
        };
        const sent: store.MailFilter = {
          ...this.#chat.scopeFilter(this.#scope),
          direction: 'sent',
          after: window.after,
          before: new Date(window.before.getTime() + REPLY_HORIZON_DAYS * DAY_MS),
        };
        const [pairs, total] = await Promise.all([
          store.responsePairs(this.#db, received, sent),
          store.count(this.#db, received),
        ]);
        const seconds = pairs.map((p) => p.seconds).sort((a, b) => a - b);
        const median = seconds.length ? medianOf(seconds) : null;
        const mean = seconds.length ? seconds.reduce((s, x) => s + x, 0) / seconds.length : null;
        const since = window.defaulted ? ` in the last ${DEFAULT_ANALYTICS_DAYS} days` : '';
        const answer =
          median === null
            ? `You did not reply to any of the ${plural(total, 'message')} you received${about}${since}.`
            : `You replied to ${pairs.length} of the ${plural(total, 'message')} you received${about}${since}. ` +
              `Your median response time was ${duration(median)} (average ${duration(mean!)}).`;
        const cited = await store.byIds(
          this.#db,
          received,
          pairs.slice(0, 5).map((p) => p.received_id),
        );
        return {
          answer,
          answeredBy: 'extractive',
          llm: null,
          citations: this.#cite(cited.reverse()),
          total,
          analytics: {
            metric,
            after: window.after.toISOString(),
            before: window.before.toISOString(),
            response_time: {
              median_seconds: median === null ? null : Math.round(median),
              mean_seconds: mean === null ? null : Math.round(mean),
              answered: pairs.length,
              received: total,
            },
          },
        };
      }
      case 'volume_by_day': {
        const window = this.#window(DEFAULT_VOLUME_DAYS);
        const after = new Date(
          Math.max(window.after.getTime(), window.before.getTime() - MAX_VOLUME_DAYS * DAY_MS),
        );
        const counted = new Map(
          (
            await store.volumeByDay(this.#db, { ...filter, after, before: window.before }, this.#timeZone)
          ).map((d) => [d.date, d.messages]),
        );
        const days = localDates(after, window.before, this.#timeZone).map((date) => ({
          date,
          messages: counted.get(date) ?? 0,
        }));
        const total = days.reduce((n, d) => n + d.messages, 0);
        const busiest = days.reduce(
          (a, b) => (b.messages > a.messages ? b : a),
          days[0] ?? { date: '', messages: 0 },
        );
        const since = window.defaulted ? ` in the last ${DEFAULT_VOLUME_DAYS} days` : '';
        return {
          answer:
            `${plural(total, 'message')}${about}${since}, ${plural(days.length, 'day')}` +
            (total
              ? `; the busiest day was ${busiest.date} with ${plural(busiest.messages, 'message')}.`
              : '.'),
          answeredBy: 'extractive',
          llm: null,
          citations: [],
          total,
          analytics: { metric, after: after.toISOString(), before: window.before.toISOString(), days },
        };
      }
    }
  }

  async #composeReply(): Promise<Outcome> {
    const filter = { ...this.#filter, direction: 'received' as const };
    const [target] = (await this.#matches(filter, 1, 1)).rows;
    if (!target)
      return {
        answer: `I found no message${this.#about()} to reply to.`,
        answeredBy: 'extractive',
        llm: null,
        citations: [],
        total: 0,
      };
    const instruction = this.#params.replyInstruction;
    const written = await this.#write('reply', [target]);
    const modelBody = written.text ? readModelDraft(written.text) : null;
    const body = modelBody ?? templateReply(target, instruction, this.#scope.signer);
    const draft: DraftData = {
      to: target.from_address ? [target.from_address.toLowerCase()] : [],
      cc: [],
      subject: replySubject(target.subject),
      body,
      in_reply_to: target.id,
      in_reply_to_header: target.message_id_header ? `<${target.message_id_header}>` : null,
    };
    return {
      answer:
        `Here is a draft reply to ${shortName(target)} about “${target.subject || '(no subject)'}”. ` +
        'It has not been sent.',
      answeredBy: modelBody ? 'llm' : 'template',
      llm: written.outcome === 'used' && !modelBody ? 'no_answer' : written.outcome,
      citations: this.#cite([target]),
      total: 1,
      draft,
    };
  }

  async #help(intent: 'smalltalk' | 'unknown'): Promise<Outcome> {
    const suggestions = (await this.#chat.suggestionsOf(this.#scope)).slice(0, 4).map((s) => s.text);
    const examples = suggestions.map((s) => `• ${s}`).join('\n');
    const answer =
      intent === 'smalltalk'
        ? 'Hello! I can search your mail, summarise messages and threads, read the tone of what people write, ' +
          `count and rank your mail, measure how fast you reply, and draft replies. For example:\n${examples}`
        : `I did not understand that as a question about your mail. You could ask, for example:\n${examples}`;
    return { answer, answeredBy: 'template', llm: null, citations: [], total: null, suggestions };
  }

  /** The model's text for a task grounded on `rows`, unless the model is off, over budget or fails. */
  #write(task: ModelTask, rows: store.MessageRow[]): Promise<Written> {
    return this.#chat.write(
      this.#scope.organizationId,
      groundedPrompt(task, rows, this.#input.text),
      this.#input.use_llm ?? true,
    );
  }
}

// ---- helpers ---------------------------------------------------------------------------------------

const lastSegment = (name: string) => name.split(/[/.]/).at(-1) ?? name;

/** "promotions" → promotions; "updates" → updates: the category names are plural already, or singular. */
function singularCategory(topic: string): string {
  const t = topic.trim().toLowerCase();
  const categories: readonly string[] = BUILT_IN_CATEGORIES;
  if (categories.includes(t)) return t;
  return categories.find((c) => c === `${t}s` || `${c}s` === t) ?? t;
}

/** Folders by name (case-insensitive, a path's last part too) or by what people call a special use. */
function foldersNamed(folders: store.ScopeFolder[], name: string): store.ScopeFolder[] {
  const wanted = name.trim().toLowerCase();
  const use = FOLDER_USES[wanted];
  return folders.filter(
    (f) =>
      f.name.toLowerCase() === wanted ||
      lastSegment(f.name).toLowerCase() === wanted ||
      (use !== undefined && f.special_use?.toLowerCase() === use),
  );
}

function baseSubjectText(subject: string | null): string {
  const text = (subject ?? '')
    .replace(/^(\s*(re|fwd?|aw|wg|sv|vs|antw|tr|rif)\s*(\[\d+\])?\s*:\s*)+/i, '')
    .trim();
  const words = text.replace(/[“”"]/g, '').split(/\s+/).filter(Boolean);
  return words.slice(0, 8).join(' ');
}

function medianOf(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function paramsView(params: RequestParams, resolved: Resolved): ParamsView {
  return {
    people: resolved.people,
    after: params.after ?? null,
    before: params.before ?? null,
    date_text: params.dateText ?? null,
    topics: resolved.topics,
    folder: params.folder ?? null,
    unread: params.unread ?? null,
    flagged: params.flagged ?? null,
    has_attachment: params.hasAttachment ?? null,
    direction: params.direction ?? null,
    metric: params.metric ?? null,
    limit: params.limit ?? null,
    reply_instruction: params.replyInstruction ?? null,
    category: resolved.category,
  };
}

/** What was looked for, in words: "from Alice Smith <alice@…>, last week, about “invoice”". */
function describe(view: ParamsView, params: RequestParams): string {
  const parts: string[] = [];
  if (view.direction === 'sent') parts.push('that you sent');
  for (const p of view.people) {
    const who =
      p.addresses.length === 1 && p.addresses[0] !== p.text.toLowerCase()
        ? `${p.text} <${p.addresses[0]}>`
        : p.text;
    parts.push(`${p.role === 'from' ? 'from' : p.role === 'to' ? 'to' : 'with'} ${who}`);
  }
  if (view.date_text) parts.push(view.date_text);
  else if (params.after || params.before)
    parts.push(
      [
        params.after && `since ${params.after.slice(0, 10)}`,
        params.before && `before ${params.before.slice(0, 10)}`,
      ]
        .filter(Boolean)
        .join(' '),
    );
  if (view.topics.length) parts.push(`about ${view.topics.map((t) => `“${t}”`).join(' and ')}`);
  if (view.category) parts.push(`in the ${view.category} category`);
  if (view.folder) parts.push(`in ${view.folder}`);
  if (view.unread) parts.push('unread');
  if (view.flagged) parts.push('flagged');
  if (view.has_attachment) parts.push('with attachments');
  return parts.join(', ');
}

/** A stored turn as the API shows it. */
export function answerOf(row: ChatTurnRow): ChatAnswer {
  const { description, ...params } = row.params as unknown as ParamsView & { description: string };
  const data = (row.data ?? {}) as {
    total?: number | null;
    sentiment?: SentimentData | null;
    analytics?: AnalyticsData | null;
    draft?: DraftData | null;
    suggestions?: string[];
  };
  return {
    turn_id: row.id,
    text: row.text,
    intent: row.intent,
    confidence: row.confidence,
    params,
    description,
    answer: row.answer,
    answered_by: row.answeredBy,
    llm: row.llm,
    citations: row.citations,
    total: data.total ?? null,
    sentiment: data.sentiment ?? null,
    analytics: data.analytics ?? null,
    draft: data.draft ?? null,
    suggestions: data.suggestions ?? [],
    mailbox_id: row.mailboxId,
    account_id: row.accountId,
    created_at: row.createdAt.toISOString(),
  };
}
