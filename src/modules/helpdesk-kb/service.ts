// The knowledge base's rules: categories, articles (slugs, publishing, full-text search), where each
// article is read (its public link) and the organisation's chatbot settings. The chatbot is chat.ts.
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { type EventInput, type EventsService, eventOf } from '../events/service.ts';
import { kbArticleCreated, kbArticleDeleted, kbArticleUpdated } from './events.ts';
import * as store from './store.ts';
import type { ArticleRow, ArticleStatus, CategoryRow, SettingsRow } from './tables.ts';

export interface KbOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  /** This installation's public URL: articles link to the API when no help centre is set. */
  publicUrl: string;
  /** The installation's default help centre (MAILROOM_HELPDESK_KB_URL): articles at `<url>/<slug>`. */
  helpCentreUrl: string | null;
}

export interface CategoryInput {
  name: string;
  description?: string | null;
  position?: number;
}

export interface ArticleInput {
  title: string;
  body: string;
  slug?: string;
  category_id?: string | null;
  tags?: string[];
  status?: ArticleStatus;
}

export interface SettingsInput {
  public_url?: string | null;
  min_score?: number;
  escalate_after?: number;
  use_llm?: boolean;
}

export interface KbSettings {
  publicUrl: string | null;
  minScore: number;
  escalateAfter: number;
  useLlm: boolean;
}

export const DEFAULT_SETTINGS: KbSettings = {
  publicUrl: null,
  minScore: 0.5,
  escalateAfter: 2,
  useLlm: true,
};

export const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const SLUG_MAX = 100;

export interface ArticleView extends ArticleRow {
  url: string;
}

export class KbService {
  readonly #o: KbOptions;

  constructor(options: KbOptions) {
    this.#o = options;
  }

  // ---- categories ------------------------------------------------------------------------------------

  async createCategory(organizationId: string, input: CategoryInput): Promise<CategoryRow> {
    const now = this.#o.clock.now();
    const row = await store.insertCategory(this.#o.db, {
      id: newId(),
      organizationId,
      name: input.name.trim(),
      description: input.description?.trim() || null,
      position: input.position ?? 0,
      createdAt: now,
      updatedAt: now,
    });
    if (!row) throw conflict(`a category named "${input.name.trim()}" exists`);
    return row;
  }

  async category(organizationId: string, id: string): Promise<CategoryRow> {
    const row = await store.category(this.#o.db, organizationId, id);
    if (!row) throw notFound('Category');
    return row;
  }

  async listCategories(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listCategories(this.#o.db, organizationId, page);
    return toPage(
      rows.map((r) => ({ ...r.category, articles: Number(r.articles) })),
      total,
      page,
    );
  }

  async updateCategory(
    organizationId: string,
    id: string,
    input: Partial<CategoryInput>,
  ): Promise<CategoryRow> {
    const row = await store.updateCategory(this.#o.db, organizationId, id, {
      ...(input.name !== undefined && { name: input.name.trim() }),
      ...(input.description !== undefined && { description: input.description?.trim() || null }),
      ...(input.position !== undefined && { position: input.position }),
      updatedAt: this.#o.clock.now(),
    });
    if (row === null) throw conflict(`a category named "${input.name?.trim()}" exists`);
    if (!row) throw notFound('Category');
    return row;
  }

  /** Its articles stay, uncategorised. */
  async deleteCategory(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteCategory(this.#o.db, organizationId, id))) throw notFound('Category');
  }

  // ---- articles --------------------------------------------------------------------------------------

  async createArticle(
    organizationId: string,
    input: ArticleInput,
    authorId: string | null,
  ): Promise<ArticleView> {
    return this.#o.db.transaction(async (tx) => {
      const settings = await this.settings(organizationId, tx);
      await this.#checkCategory(tx, organizationId, input.category_id);
      const slug = input.slug ?? (await this.#freeSlug(tx, organizationId, slugify(input.title)));
      const now = this.#o.clock.now();
      const status = input.status ?? 'draft';
      const row = await store.insertArticle(tx, {
        id: newId(),
        organizationId,
        categoryId: input.category_id ?? null,
        title: input.title.trim(),
        slug,
        body: input.body,
        tags: normalTags(input.tags ?? []),
        status,
        publishedAt: status === 'published' ? now : null,
        createdBy: authorId,
        createdAt: now,
        updatedAt: now,
      });
      if (!row) throw conflict(`an article with the slug "${slug}" exists`);
      const view = this.#view(row, settings);
      await this.#o.events.emitMany(tx, [
        eventOf(kbArticleCreated, organizationId, { article: eventArticle(view) }),
      ]);
      return view;
    });
  }

  async article(organizationId: string, id: string): Promise<ArticleView> {
    const row = await store.article(this.#o.db, organizationId, id);
    if (!row) throw notFound('Article');
    return this.#view(row, await this.settings(organizationId));
  }

  async listArticles(organizationId: string, filter: store.ArticleFilter, page: PageRequest) {
    const [settings, { rows, total }] = await Promise.all([
      this.settings(organizationId),
      store.listArticles(this.#o.db, organizationId, filter, page),
    ]);
    return toPage(
      rows.map((r) => ({
        ...this.#view(r.article, settings),
        score: r.rank === null ? null : Math.round(Number(r.rank) * 1000) / 1000,
        snippet: r.snippet,
      })),
      total,
      page,
    );
  }

  async updateArticle(
    organizationId: string,
    id: string,
    input: Partial<ArticleInput>,
  ): Promise<ArticleView> {
    return this.#o.db.transaction(async (tx) => {
      const before = await store.article(tx, organizationId, id, true);
      if (!before) throw notFound('Article');
      const settings = await this.settings(organizationId, tx);
      if (input.category_id) await this.#checkCategory(tx, organizationId, input.category_id);
      const now = this.#o.clock.now();
      const changes: Partial<ArticleRow> = {};
      if (input.title !== undefined) changes.title = input.title.trim();
      if (input.body !== undefined) changes.body = input.body;
      if (input.slug !== undefined) changes.slug = input.slug;
      if (input.category_id !== undefined) changes.categoryId = input.category_id;
      if (input.tags !== undefined) changes.tags = normalTags(input.tags);
      if (input.status !== undefined && input.status !== before.status) {
        changes.status = input.status;
        changes.publishedAt = input.status === 'published' ? now : null;
      }
      const changed = Object.keys(changes).filter(
        (k) =>
          JSON.stringify(changes[k as keyof ArticleRow]) !== JSON.stringify(before[k as keyof ArticleRow]),
      );
      if (!changed.length) return this.#view(before, settings);
      const row = await store.updateArticle(tx, id, { ...changes, updatedAt: now });
      if (!row) throw conflict(`an article with the slug "${input.slug}" exists`);
      const view = this.#view(row, settings);
      await this.#o.events.emitMany(tx, [
        eventOf(kbArticleUpdated, organizationId, {
          article: eventArticle(view),
          changes: changed.map(snakeCase).sort(),
        }),
      ]);
      return view;
    });
  }

  async deleteArticle(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const row = await store.deleteArticle(tx, organizationId, id);
      if (!row) throw notFound('Article');
      const events: EventInput[] = [
        eventOf(kbArticleDeleted, organizationId, {
          article: eventArticle(this.#view(row, await this.settings(organizationId, tx))),
        }),
      ];
      await this.#o.events.emitMany(tx, events);
    });
  }

  async #checkCategory(tx: Db, organizationId: string, categoryId: string | null | undefined): Promise<void> {
    if (categoryId && !(await store.category(tx, organizationId, categoryId)))
      throw validationFailed('category_id', 'no such category');
  }

  /** `base`, or `base-2`, `base-3`… whichever the organisation has not used. */
  async #freeSlug(tx: Db, organizationId: string, base: string): Promise<string> {
    const taken = new Set(await store.slugsLike(tx, organizationId, base));
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) {
      const candidate = `${base.slice(0, SLUG_MAX - String(n).length - 1)}-${n}`;
      if (!taken.has(candidate)) return candidate;
    }
  }

  // ---- links and settings ----------------------------------------------------------------------------

  /** Where a customer reads the article: the organisation's help centre, the installation's, or the API. */
  urlOf(row: Pick<ArticleRow, 'id' | 'slug'>, settings: KbSettings): string {
    const base = settings.publicUrl ?? this.#o.helpCentreUrl;
    if (base) return `${base.replace(/\/+$/, '')}/${row.slug}`;
    return `${this.#o.publicUrl}/v1/helpdesk/kb/articles/${row.id}`;
  }

  #view(row: ArticleRow, settings: KbSettings): ArticleView {
    return { ...row, url: this.urlOf(row, settings) };
  }

  async settings(organizationId: string, db: Db = this.#o.db): Promise<KbSettings> {
    const row = await store.settings(db, organizationId);
    return row ? settingsOf(row) : DEFAULT_SETTINGS;
  }

  async putSettings(organizationId: string, input: SettingsInput): Promise<KbSettings> {
    const current = await this.settings(organizationId);
    const row = await store.putSettings(this.#o.db, {
      organizationId,
      publicUrl: input.public_url !== undefined ? input.public_url : current.publicUrl,
      minScore: input.min_score ?? current.minScore,
      escalateAfter: input.escalate_after ?? current.escalateAfter,
      useLlm: input.use_llm ?? current.useLlm,
      updatedAt: this.#o.clock.now(),
    });
    return settingsOf(row);
  }
}

function settingsOf(row: SettingsRow): KbSettings {
  return {
    publicUrl: row.publicUrl,
    minScore: Math.round(row.minScore * 1000) / 1000,
    escalateAfter: row.escalateAfter,
    useLlm: row.useLlm,
  };
}

function eventArticle(a: ArticleView) {
  return { id: a.id, title: a.title, slug: a.slug, status: a.status, category_id: a.categoryId, url: a.url };
}

const snakeCase = (key: string) => key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);

/** A slug from a title: ASCII letters and digits joined by single dashes. */
export function slugify(title: string): string {
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_MAX - 8)
    .replace(/-+$/, '');
  return slug || 'article';
}

export function normalTags(tags: string[]): string[] {
  return [...new Set(tags.map((t) => t.trim().toLowerCase()).filter(Boolean))].sort();
}
