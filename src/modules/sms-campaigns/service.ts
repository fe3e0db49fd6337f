// SMS templates (Liquid, with a preview that measures the text as the gateways will), contacts (one per
// E.164 number in an organisation) and contact lists. Imports and campaigns build on these.
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { OrganizationsService } from '../organizations/service.ts';
import { isRegion, normalizeNumber } from '../sms/numbers.ts';
import { measure } from '../sms/segments.ts';
import { compile, renderChecked, type TemplateVariables, variablesOf } from './liquid.ts';
import * as store from './store.ts';
import type { ContactRow, TemplateRow } from './tables.ts';

export type { ContactFilter, ListWithCount } from './store.ts';

export interface TemplateInput {
  name: string;
  body: string;
  description?: string | null;
}

export interface ContactInput {
  phone: string;
  name?: string | null;
  fields?: Record<string, string>;
  tags?: string[];
  /** Where a number without a country code is read (ISO 3166 alpha-2). */
  default_region?: string | null;
  list_ids?: string[];
}

export interface ContactChanges {
  phone?: string;
  name?: string | null;
  /** Merged into the contact's fields; null removes one. */
  fields?: Record<string, string | null>;
  tags?: string[];
  default_region?: string | null;
}

/** Which contacts a list operation touches: these ids, or those a filter matches. */
export interface MemberSelection {
  contact_ids?: string[];
  filter?: store.ContactFilter;
}

export interface Preview {
  text: string;
  encoding: 'gsm7' | 'ucs2';
  characters: number;
  units: number;
  parts: number;
}

export interface SmsContactsOptions {
  db: Db;
  organizations: OrganizationsService;
  /** The organisation's region for numbers written without a country code (its SMS settings). */
  defaultRegion: (organizationId: string) => Promise<string>;
}

/** Tags as stored: trimmed, unique, sorted. */
export function normalTags(tags: string[]): string[] {
  return [...new Set(tags.map((t) => t.trim()).filter(Boolean))].sort();
}

export class SmsContactsService {
  readonly #o: SmsContactsOptions;

  constructor(options: SmsContactsOptions) {
    this.#o = options;
  }

  // ---- templates -------------------------------------------------------------------------------------

  async createTemplate(organizationId: string, input: TemplateInput): Promise<TemplateRow> {
    compile('body', input.body);
    return this.#unique(`A template named ${input.name} exists already`, () =>
      store.insertTemplate(this.#o.db, {
        id: newId(),
        organizationId,
        name: input.name,
        body: input.body,
        description: input.description ?? null,
      }),
    );
  }

  async getTemplate(organizationId: string, id: string): Promise<TemplateRow> {
    const row = await store.templateById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Template');
    return row;
  }

  async listTemplates(organizationId: string, search: string | undefined, page: PageRequest) {
    const { rows, total } = await store.listTemplates(this.#o.db, organizationId, search, page);
    return toPage(rows, total, page);
  }

  async updateTemplate(
    organizationId: string,
    id: string,
    changes: Partial<TemplateInput>,
  ): Promise<TemplateRow> {
    if (changes.body !== undefined) compile('body', changes.body);
    const row = await this.#unique(`A template named ${changes.name} exists already`, () =>
      store.updateTemplate(this.#o.db, organizationId, id, changes),
    );
    if (!row) throw notFound('Template');
    return row;
  }

  async deleteTemplate(organizationId: string, id: string): Promise<void> {
    await this.getTemplate(organizationId, id);
    const drafts = await store.draftsUsing(this.#o.db, organizationId, { templateId: id });
    if (drafts.length)
      throw conflict(`The template is used by draft campaigns: ${drafts.map((d) => d.name).join(', ')}`);
    await store.deleteTemplate(this.#o.db, organizationId, id);
  }

  /**
   * The text a template (saved, or a body not yet saved) makes for a contact or for given variables,
   * and how it will be sent: its encoding and part count. A template that does not parse is a 422.
   */
  async preview(
    organizationId: string,
    source: { templateId?: string; body?: string },
    subject: { contactId?: string; variables?: Record<string, unknown> },
  ): Promise<Preview> {
    const body = source.templateId
      ? (await this.getTemplate(organizationId, source.templateId)).body
      : source.body;
    if (body === undefined) throw validationFailed('body', 'give a body or a template');
    const template = compile('body', body);
    const text = renderChecked('body', template, await this.#variables(organizationId, subject));
    const m = measure(text);
    return { text, encoding: m.encoding, characters: m.characters, units: m.units, parts: m.parts };
  }

  async #variables(
    organizationId: string,
    subject: { contactId?: string; variables?: Record<string, unknown> },
  ): Promise<TemplateVariables> {
    const org = await this.#o.organizations.get(organizationId);
    const organization = { id: org.id, name: org.name };
    if (subject.contactId) {
      const contact = await this.getContact(organizationId, subject.contactId);
      return variablesOf(contact, organization);
    }
    // Given variables stand in for a contact; what they leave out is empty.
    const given = subject.variables ?? {};
    const contact = (given.contact ?? {}) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    const base = variablesOf(
      {
        id: null,
        phone: text(contact.phone),
        name: text(contact.name) || null,
        tags: Array.isArray(contact.tags) ? contact.tags.map(String) : [],
        fields:
          typeof contact.fields === 'object' && contact.fields !== null
            ? (contact.fields as Record<string, unknown>)
            : {},
      },
      organization,
    );
    if (typeof contact.first_name === 'string') base.contact.first_name = contact.first_name;
    return { ...given, ...base } as TemplateVariables;
  }

  // ---- contacts --------------------------------------------------------------------------------------

  /** A number as stored (E.164); a 422 naming it when it is not one. */
  async normalize(organizationId: string, raw: string, region: string | null | undefined): Promise<string> {
    if (region && !isRegion(region)) throw validationFailed('default_region', `${region} is not a region`);
    return normalizeNumber(raw, region ?? (await this.#o.defaultRegion(organizationId)), 'phone');
  }

  async createContact(organizationId: string, input: ContactInput): Promise<ContactRow> {
    const phone = await this.normalize(organizationId, input.phone, input.default_region);
    const listIds = [...new Set(input.list_ids ?? [])];
    return this.#o.db.transaction(async (tx) => {
      for (const [i, listId] of listIds.entries())
        if (!(await store.listById(tx, organizationId, listId)))
          throw validationFailed(`list_ids.${i}`, 'no such list');
      const row = await store.insertContact(tx, {
        id: newId(),
        organizationId,
        phone,
        name: input.name ?? null,
        fields: input.fields ?? {},
        tags: normalTags(input.tags ?? []),
        listIds,
      });
      if (!row) {
        const existing = await store.contactByPhone(tx, organizationId, phone);
        throw new AppError(409, 'conflict', `${phone} is a contact already (${existing?.id})`, {
          extensions: { contact_id: existing?.id },
        });
      }
      return row;
    });
  }

  async getContact(organizationId: string, id: string): Promise<ContactRow> {
    const row = await store.contactById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Contact');
    return row;
  }

  async listContacts(organizationId: string, filter: store.ContactFilter, page: PageRequest) {
    const { rows, total } = await store.listContacts(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  async updateContact(organizationId: string, id: string, changes: ContactChanges): Promise<ContactRow> {
    const phone =
      changes.phone === undefined
        ? undefined
        : await this.normalize(organizationId, changes.phone, changes.default_region);
    return this.#o.db.transaction(async (tx) => {
      const current = await store.contactById(tx, organizationId, id);
      if (!current) throw notFound('Contact');
      if (phone && phone !== current.phone) {
        const taken = await store.contactByPhone(tx, organizationId, phone);
        if (taken)
          throw new AppError(409, 'conflict', `${phone} is a contact already (${taken.id})`, {
            extensions: { contact_id: taken.id },
          });
      }
      let fields: Record<string, string> | undefined;
      if (changes.fields) {
        fields = { ...current.fields };
        for (const [key, value] of Object.entries(changes.fields)) {
          if (value === null) delete fields[key];
          else fields[key] = value;
        }
      }
      const row = await store.updateContact(tx, organizationId, id, {
        phone,
        name: changes.name,
        fields,
        tags: changes.tags ? normalTags(changes.tags) : undefined,
      });
      return row!;
    });
  }

  async deleteContact(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteContact(this.#o.db, organizationId, id))) throw notFound('Contact');
  }

  // ---- lists -----------------------------------------------------------------------------------------

  async createList(organizationId: string, input: { name: string; description?: string | null }) {
    const row = await this.#unique(`A list named ${input.name} exists already`, () =>
      store.insertList(this.#o.db, {
        id: newId(),
        organizationId,
        name: input.name,
        description: input.description ?? null,
      }),
    );
    return { ...row, members: 0 };
  }

  async getList(organizationId: string, id: string, db: Db = this.#o.db): Promise<store.ListWithCount> {
    const row = await store.listById(db, organizationId, id);
    if (!row) throw notFound('List');
    return row;
  }

  async listLists(organizationId: string, search: string | undefined, page: PageRequest) {
    const { rows, total } = await store.listLists(this.#o.db, organizationId, search, page);
    return toPage(rows, total, page);
  }

  async updateList(
    organizationId: string,
    id: string,
    changes: { name?: string; description?: string | null },
  ) {
    const found = await this.#unique(`A list named ${changes.name} exists already`, () =>
      store.updateList(this.#o.db, organizationId, id, changes),
    );
    if (!found) throw notFound('List');
    return this.getList(organizationId, id);
  }

  async deleteList(organizationId: string, id: string): Promise<void> {
    await this.getList(organizationId, id);
    const drafts = await store.draftsUsing(this.#o.db, organizationId, { listId: id });
    if (drafts.length)
      throw conflict(
        `The list is used by campaigns not started yet: ${drafts.map((d) => d.name).join(', ')}`,
      );
    await store.deleteList(this.#o.db, organizationId, id);
  }

  /** Adds contacts (by id, or all that a filter matches) to the list; how many joined. */
  async addMembers(organizationId: string, listId: string, selection: MemberSelection): Promise<number> {
    await this.getList(organizationId, listId);
    const filter = await this.#selection(organizationId, selection);
    return store.addMembers(this.#o.db, organizationId, listId, filter);
  }

  async removeMembers(organizationId: string, listId: string, selection: MemberSelection): Promise<number> {
    await this.getList(organizationId, listId);
    const filter = await this.#selection(organizationId, selection, false);
    return store.removeMembers(this.#o.db, organizationId, listId, filter);
  }

  async #selection(
    organizationId: string,
    s: MemberSelection,
    checkIds = true,
  ): Promise<store.ContactFilter> {
    if (Boolean(s.contact_ids) === Boolean(s.filter))
      throw validationFailed('body', 'give contact_ids or filter (one of them)');
    if (s.contact_ids) {
      const ids = [...new Set(s.contact_ids)];
      if (checkIds) {
        const unknown = await store.unknownContacts(this.#o.db, organizationId, ids);
        if (unknown.length) throw validationFailed('contact_ids', `no such contacts: ${unknown.join(', ')}`);
      }
      return { ids };
    }
    return s.filter!;
  }

  /** A unique key (name, number) taken already is a 409 with `message`. */
  async #unique<T>(message: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (databaseErrorCode(err) === '23505') throw conflict(message);
      throw err;
    }
  }
}
