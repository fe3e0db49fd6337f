// SMS templates are Liquid, rendered by the shared safe engine: only the variables given, no file tags,
// limits on parse size, render time and memory. A campaign parses its template once and renders it per
// recipient.
import type { Template } from 'liquidjs';
import { validationFailed } from '../../core/errors.ts';
import { safeLiquid } from '../../core/liquid.ts';

const liquid = safeLiquid({ cache: 500, renderLimit: 100, memoryLimit: 1_000_000 });

/** What a template sees. */
export interface TemplateVariables {
  contact: {
    id: string | null;
    phone: string;
    name: string;
    first_name: string;
    tags: string[];
    fields: Record<string, unknown>;
  };
  organization: { id: string; name: string };
}

const message = (err: unknown) =>
  (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 500);

/** The parsed template; a 422 naming `field` when it does not parse. */
export function compile(field: string, text: string): Template[] {
  try {
    return liquid.parse(text);
  } catch (err) {
    throw validationFailed(field, `not a valid Liquid template: ${message(err)}`);
  }
}

/** Renders a parsed template; what fails at render time (a limit, a filter's argument) throws. */
export function render(template: Template[], variables: TemplateVariables): string {
  return liquid.renderSync(template, variables as unknown as Record<string, unknown>);
}

/** render, with a failure as a 422 naming `field` (previews). */
export function renderChecked(field: string, template: Template[], variables: TemplateVariables): string {
  try {
    return render(template, variables);
  } catch (err) {
    throw validationFailed(field, `the template could not be rendered: ${message(err)}`);
  }
}

export function renderError(err: unknown): string {
  return `the template could not be rendered: ${message(err)}`;
}

export function firstName(name: string | null): string {
  return name?.trim().split(/\s+/)[0] ?? '';
}

export function variablesOf(
  contact: {
    id: string | null;
    phone: string;
    name: string | null;
    tags: string[];
    fields: Record<string, unknown>;
  },
  organization: { id: string; name: string },
): TemplateVariables {
  return {
    contact: {
      id: contact.id,
      phone: contact.phone,
      name: contact.name ?? '',
      first_name: firstName(contact.name),
      tags: contact.tags,
      fields: contact.fields,
    },
    organization,
  };
}
