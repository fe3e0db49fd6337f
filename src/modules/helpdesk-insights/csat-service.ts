// Customer satisfaction: the resolution mail carries two one-click links (good, bad) with a random token
// per resolution. The token is found by its SHA-256 and kept sealed, so a retried mail job writes the same
// links. A link opens a page that posts the rating (by itself in a browser, or with its button): a GET
// records nothing, since mail security scanners fetch every link. The first rating counts; ratings within
// CHANGE_WINDOW of it may change it; a link nobody used expires after LINK_LIFETIME. Rate-limited per
// address and per link.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { randomToken, type Secrets, sha256 } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { AppError, notFound, tooManyRequests } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { RateLimiter } from '../../core/ratelimit.ts';
import type { EventsService } from '../events/service.ts';
import type { HelpdeskService } from '../helpdesk/service.ts';
import { ticketCsatRated } from './events.ts';
import * as store from './store.ts';

const DAY = 86_400_000;
/** How long after its first rating a survey may be changed. */
export const CHANGE_WINDOW_MS = 7 * DAY;
/** How long after the resolution a link may be used for a first rating. */
export const LINK_LIFETIME_MS = 30 * DAY;
const CLICKS_PER_IP = { name: 'csat:ip', limit: 30, windowSeconds: 60 };
const CLICKS_PER_TOKEN = { name: 'csat:token', limit: 10, windowSeconds: 60 };

export type Rating = 'good' | 'bad';

export interface CsatOptions {
  db: Db;
  secrets: Secrets;
  clock: Clock;
  limiter: RateLimiter;
  events: EventsService;
  helpdesk: HelpdeskService;
  log: Logger;
  /** Where the links point: the installation's public URL. */
  publicUrl: string;
}

export interface RatingOutcome {
  surveyId: string;
  organizationId: string;
  ticketNumber: number;
  rating: Rating;
  /** The click changed nothing (the same rating, or the change window is over). */
  unchanged: boolean;
  /** No further change is possible. */
  final: boolean;
  token: string;
}

export class CsatService {
  readonly #o: CsatOptions;

  constructor(options: CsatOptions) {
    this.#o = options;
  }

  link(token: string, rating: Rating): string {
    return `${this.#o.publicUrl}/v1/helpdesk/csat/${token}?rating=${rating}`;
  }

  /** The lines the resolution mail carries (registered with the helpdesk mailer). */
  readonly resolutionLines = async (organizationId: string, ticketId: string): Promise<string | null> => {
    const ticket = await this.#o.helpdesk.ticket(organizationId, ticketId).catch(() => null);
    // Re-opened before the mail went: there is no resolution to rate.
    if (!ticket?.resolvedAt) return null;
    const fresh = randomToken(32);
    const survey = await store.surveyFor(this.#o.db, {
      id: newId(),
      organizationId,
      ticketId,
      resolvedAt: ticket.resolvedAt,
      tokenHash: sha256(fresh),
      tokenSealed: this.#o.secrets.encrypt(fresh),
    });
    const token = this.#o.secrets.decrypt(survey.tokenSealed);
    return [
      'How did we do? One click tells us:',
      `Good: ${this.link(token, 'good')}`,
      `Bad: ${this.link(token, 'bad')}`,
    ].join('\n');
  };

  /**
   * What following a link would do, without recording it (the page a GET answers: mail scanners fetch
   * links too); 404 for an unknown token, 410 for an expired one, 429 over the limits.
   */
  async look(token: string, rating: Rating, ip: string): Promise<RatingOutcome> {
    return (await this.#survey(token, rating, ip)).outcome;
  }

  /** Records a rating (the page's POST); the same answers as `look`. */
  async rate(token: string, rating: Rating, ip: string): Promise<RatingOutcome> {
    const { survey, ticket, outcome } = await this.#survey(token, rating, ip);
    if (outcome.unchanged) return outcome;
    const now = this.#o.clock.now();
    const [snapshot] = await this.#o.helpdesk.snapshots(survey.organizationId, [ticket]);
    await this.#o.db.transaction(async (tx) => {
      await store.rateSurvey(tx, survey.id, rating, now, survey.rating === null);
      await this.#o.events.emit(tx, ticketCsatRated, survey.organizationId, {
        ticket: snapshot!,
        actor: { type: 'customer', id: ticket.requesterId, depth: 0 },
        survey_id: survey.id,
        rating,
        previous_rating: survey.rating,
      });
    });
    return outcome;
  }

  async #survey(token: string, rating: Rating, ip: string) {
    for (const [limit, key] of [
      [CLICKS_PER_IP, ip],
      [CLICKS_PER_TOKEN, sha256(token)],
    ] as const) {
      const hit = await this.#o.limiter.hit(limit, key);
      if (!hit.allowed) throw tooManyRequests(hit.retryAfterSeconds);
    }
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) throw notFound('Survey');
    const survey = await store.surveyByTokenHash(this.#o.db, sha256(token));
    if (!survey) throw notFound('Survey');
    const now = this.#o.clock.now();
    const ticket = await this.#o.helpdesk.ticket(survey.organizationId, survey.ticketId);
    const base = {
      surveyId: survey.id,
      organizationId: survey.organizationId,
      ticketNumber: ticket.number,
      token,
    };
    if (survey.rating && survey.ratedAt) {
      const final = now.getTime() - survey.ratedAt.getTime() > CHANGE_WINDOW_MS;
      if (final || survey.rating === rating)
        return { survey, ticket, outcome: { ...base, rating: survey.rating, unchanged: true, final } };
    } else if (now.getTime() - survey.resolvedAt.getTime() > LINK_LIFETIME_MS) {
      throw new AppError(410, 'expired', 'This satisfaction link has expired');
    }
    return { survey, ticket, outcome: { ...base, rating, unchanged: false, final: false } };
  }
}
