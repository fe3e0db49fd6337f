// Templates are Liquid, rendered safely: only the variables given (own properties, no prototype walks), no
// unknown filters, no file tags (include, render and layout would read the server's disk), and limits on
// parse size, render time and memory so an organisation's template cannot hold a worker.
import { validationFailed } from '../../core/errors.ts';
import { safeLiquid } from '../../core/liquid.ts';

const liquid = safeLiquid({ cache: 500, renderLimit: 200, memoryLimit: 2_000_000 });

/** The variables a template sees. */
export interface TemplateContext {
  ticket: {
    id: string;
    number: number;
    subject: string;
    /** `[#12] Printer on fire`: what the requester's mail subject shows. */
    tagged_subject: string;
    status: string;
    priority: string;
    tags: string[];
    custom_fields: Record<string, unknown>;
    source: string;
    comments: number;
    created_at: string;
    updated_at: string;
    due_at: string | null;
  };
  requester: { email: string; name: string; first_name: string };
  agent: { id: string | null; email: string; name: string; first_name: string };
  desk: { id: string; name: string; address: string; signature: string };
}

const message = (err: unknown) =>
  (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 500);

/** Throws a 422 naming `field` when the text is not a template this engine can render. */
export function checkTemplate(field: string, text: string): void {
  try {
    liquid.parse(text);
  } catch (err) {
    throw validationFailed(field, `not a valid Liquid template: ${message(err)}`);
  }
}

/** Renders `text`; a template that fails at render time (a limit, a bad filter argument) is a 422. */
export function renderTemplate(field: string, text: string, context: TemplateContext): string {
  try {
    return liquid.parseAndRenderSync(text, context as unknown as Record<string, unknown>);
  } catch (err) {
    throw validationFailed(field, `the template could not be rendered: ${message(err)}`);
  }
}

/** The first word of a name, else the address's local part, capitalised. */
export function firstName(name: string | null, email: string): string {
  const guess =
    name?.trim().split(/\s+/)[0] || email.slice(0, email.lastIndexOf('@')).split(/[._+-]/)[0] || '';
  return guess.charAt(0).toUpperCase() + guess.slice(1);
}
