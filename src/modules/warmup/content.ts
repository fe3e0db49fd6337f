// What warmup messages say: a template set of ordinary business notes and replies, varied by spintax
// ({Hi|Hello|Hey}: one option picked at random, nestable) and personalised by Liquid ({{ recipient.first_name }}).
// Spintax is expanded first, leaving Liquid's {{ }} and {% %} alone; Liquid then renders the result with
// only the variables below (no code runs from a template). Organisations may add their own templates.
import { safeLiquid } from '../../core/liquid.ts';

export interface Person {
  first_name: string;
  name: string;
  address: string;
}

export interface TemplateVariables {
  sender: Person;
  recipient: Person;
  weekday: string;
}

export interface Template {
  /** `builtin:<n>` or the organisation's template id. */
  key: string;
  subject: string;
  body: string;
}

// Limits, so an organisation's template cannot hold a worker: parse size, render time (ms) and memory.
const liquid = safeLiquid({ cache: 200, renderLimit: 100, memoryLimit: 1_000_000 });

export class SpintaxError extends Error {}

/** One random expansion of the spintax in `text`; Liquid tags and outputs pass through untouched. */
export function spin(text: string, random: () => number = Math.random): string {
  let i = 0;
  const expand = (inGroup: boolean): string[] => {
    // The options of the group being read (one when not in a group), each already expanded.
    const options: string[] = [];
    let current = '';
    while (i < text.length) {
      const c = text[i];
      const two = text.slice(i, i + 2);
      if (two === '{{' || two === '{%') {
        const close = two === '{{' ? '}}' : '%}';
        const end = text.indexOf(close, i + 2);
        if (end < 0) throw new SpintaxError(`unclosed ${two} at ${i}`);
        current += text.slice(i, end + 2);
        i = end + 2;
      } else if (c === '{') {
        i++;
        const inner = expand(true);
        current += inner[Math.floor(random() * inner.length)] ?? '';
      } else if (c === '}') {
        if (!inGroup) throw new SpintaxError(`unmatched } at ${i}`);
        i++;
        options.push(current);
        return options;
      } else if (c === '|' && inGroup) {
        i++;
        options.push(current);
        current = '';
      } else {
        current += c;
        i++;
      }
    }
    if (inGroup) throw new SpintaxError('unclosed {');
    options.push(current);
    return options;
  };
  return expand(false)[0];
}

/** Throws a SpintaxError or Liquid's parse error when the text cannot be rendered. */
export function checkTemplate(text: string): void {
  liquid.parse(spin(text));
}

export function render(
  text: string,
  variables: TemplateVariables,
  random: () => number = Math.random,
): string {
  return liquid.parseAndRenderSync(spin(text, random), variables as unknown as Record<string, unknown>);
}

/** The first name a template greets: the mailbox's own, else the first word of its name, else the local part. */
export function person(address: string, name: string, firstName = ''): Person {
  const local = address.slice(0, address.lastIndexOf('@'));
  const guessed = firstName || name.trim().split(/\s+/)[0] || local.split(/[._+-]/)[0] || local;
  return { first_name: guessed.charAt(0).toUpperCase() + guessed.slice(1), name: name || guessed, address };
}

const SIGN_OFF = '{Best|Thanks|Cheers|Kind regards|All the best|Talk soon},\n{{ sender.first_name }}';

/** Openings: the first message of a conversation. */
export const OPENINGS: Template[] = [
  [
    '{Quick question|A quick question|Question} about {next week|the plan|our call}',
    '{Hi|Hello|Hey} {{ recipient.first_name }},\n\n{Do you have|Would you have|Have you got} {a few minutes|ten minutes|some time} {next week|this week|on {Tuesday|Wednesday|Thursday}} to {go over|talk through|look at} the {plan|numbers|proposal}? {I have a few ideas|There are a couple of things} I would like to {run by you|share}.',
  ],
  [
    '{Notes|Follow-up|Recap} from {today|our meeting|this morning}',
    '{Hi|Hello} {{ recipient.first_name }},\n\n{Thanks for|Thank you for|Good to have} {the time today|the call|the meeting}. {I wrote up|Here are|I put together} {the main points|a few notes|the next steps}:\n\n- {review the draft|check the timeline|confirm the budget}\n- {send the updated|share the revised|finish the} {deck|document|plan}\n\n{Let me know if I missed anything.|Anything to add?|Does that match your notes?}',
  ],
  [
    '{Lunch|Coffee} {on {{ weekday }}|this week|soon}?',
    '{Hey|Hi} {{ recipient.first_name }},\n\n{Are you free|Would you be up|Fancy meeting} for {lunch|coffee|a quick bite} {on {{ weekday }}|later this week|one of these days}? {There is a new place|I found a nice spot|I know a good place} {around the corner|near the office|downtown}.',
  ],
  [
    '{The|Our} {report|document|draft} {is ready|for review|you asked about}',
    '{Hello|Hi} {{ recipient.first_name }},\n\n{The|Our} {draft|report|summary} is {ready|done|finished}. {Could you|Would you mind to|Can you} {take a look|have a read|review it} {when you get a chance|by {Friday|Thursday|the end of the week}}? {Comments welcome.|Happy to change anything.|Any feedback helps.}',
  ],
  [
    '{Checking in|Catching up|Hello from {{ sender.first_name }}}',
    '{Hi|Hello|Hey} {{ recipient.first_name }},\n\n{It has been a while|Long time no talk|I hope {things are good|all is well|the week is going well}}! {How are things|How is everything|What are you working on} {on your side|these days|at the moment}? {Let us catch up soon.|We should talk soon.|Would be great to hear from you.}',
  ],
  [
    '{Schedule|Timeline|Dates} for {the project|next month|the launch}',
    '{Hi|Hello} {{ recipient.first_name }},\n\n{I put together|Here is|I drafted} {a rough|a first|an early} {schedule|timeline} for {the project|the launch|next month}. {The key dates are|Main milestones:|In short:} {kickoff on the 3rd, review on the 15th|first draft mid-month, final at the end|start Monday, review in two weeks}. {Does that work for you?|Can your team make it?|Let me know what you think.}',
  ],
  [
    '{Thank you|Thanks} {for yesterday|for your help|again}',
    '{Hi|Hello} {{ recipient.first_name }},\n\n{Just wanted to say|I wanted to say|A quick note to say} {thank you|thanks} for {your help|the support|jumping in} {yesterday|on the project|last week}. {It made a real difference.|It helped a lot.|Much appreciated.}',
  ],
  [
    '{Idea|Thought|Suggestion} for {the newsletter|the blog|our next post}',
    '{Hey|Hi} {{ recipient.first_name }},\n\n{I had an idea|Something came to mind|A thought} for {the newsletter|our next blog post|the next update}: {a short case study|a how-to piece|an interview with a customer}. {What do you think?|Worth a try?|Could be a good one.}',
  ],
  [
    '{Meeting|Call} {moved|rescheduled|update}',
    '{Hi|Hello} {{ recipient.first_name }},\n\n{Small change|Heads up|Quick update}: {our meeting|the call} {moves|is moving} to {{ weekday }} {at 10|at 2 pm|in the afternoon}. {Same link as before.|Nothing else changes.|Hope that still works.}',
  ],
  [
    '{Question about|About} {the invoice|the order|the contract}',
    '{Hello|Hi} {{ recipient.first_name }},\n\n{Could you|Can you|Would you} {check|confirm|look into} {the invoice|the order|the contract} from {last week|last month|Monday}? {I think|It looks like|I believe} {the date|one line|the address} {needs an update|is off|is not right}.',
  ],
  [
    '{Article|Something} you might {like|enjoy|find useful}',
    '{Hi|Hey} {{ recipient.first_name }},\n\n{I came across|I read|I found} {an article|a piece|a good write-up} about {remote teams|customer research|planning} and {thought of you|thought you would like it|it reminded me of our chat}. {I will send the link over.|Happy to share it.|Let me know if you want it.}',
  ],
  [
    '{Plans|Agenda} for {{ weekday }}',
    '{Hi|Hello} {{ recipient.first_name }},\n\n{For|Ahead of} {{ weekday }}, {here is|this is} {what I have in mind|the rough agenda|the plan}: {a short review|status updates|a demo}, then {questions|open points|next steps}. {Anything you want to add?|Add anything you need.|Sound good?}',
  ],
].map(([subject, body], n) => ({ key: `builtin:opening:${n}`, subject, body: `${body}\n\n${SIGN_OFF}` }));

/** Replies: answers in a conversation (their subject is Re: the conversation's). */
export const REPLIES: Template[] = [
  '{Thanks|Thank you|Great}, {{ recipient.first_name }}! {That works for me.|Sounds good.|Perfect.} {I will get back to you|I will follow up|Let us talk} {soon|tomorrow|later this week}.',
  '{Hi|Hey} {{ recipient.first_name }}, {good to hear from you|thanks for the note|thanks for reaching out}. {Yes|Sure|Absolutely}, {count me in|that is fine|let us do it}.',
  '{Got it|Noted|Understood}, {thanks|thank you}. {I will take a look|I will review it|I will check} {today|this afternoon|first thing tomorrow}.',
  '{Sounds great|Good idea|Love it}! {Let me|I will} {check my calendar|see what I can do|ask the team} and {get back to you|confirm|reply} {soon|by tomorrow|later today}.',
  '{Thanks for the update|Thanks for letting me know|Appreciate the heads up}, {{ recipient.first_name }}. {All good on my side.|No problem at all.|That is fine.}',
  '{Hi|Hello} {{ recipient.first_name }}, {that makes sense|agreed|good point}. {One small thing|One question|Just one note}: {can we keep it short|could we add the numbers|shall we invite Sam}?',
].map((body, n) => ({ key: `builtin:reply:${n}`, subject: '', body: `${body}\n\n${SIGN_OFF}` }));

export function pick<T>(items: T[], random: () => number = Math.random): T {
  return items[Math.floor(random() * items.length)];
}

export const WEEKDAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
