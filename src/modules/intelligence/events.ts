// Mail intelligence's events: emitted in the transaction that stores a batch's analyses.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const analysed = z.object({ message_id: z.uuid() });

export const messageAnalyzed = defineEvent(
  'message.analyzed',
  'A message was analysed (after filing, or by a re-analysis): its spam, phishing and malware verdicts, language, sentiment and category',
  analysed.extend({
    spam: z.boolean(),
    spam_score: z.number(),
    phishing: z.enum(['clean', 'suspicious', 'phishing']),
    malware: z.string().nullable(),
    language: z.string(),
    sentiment: z.enum(['negative', 'neutral', 'positive']),
    category: z.string(),
    priority: z.enum(['high', 'normal', 'low']),
    junked: z.boolean().describe('Moved from INBOX into Junk by this analysis'),
  }),
);
export const messagePhishingDetected = defineEvent(
  'message.phishing_detected',
  'Analysis found a message to be phishing (or suspicious): the findings with their evidence',
  analysed.extend({
    verdict: z.enum(['suspicious', 'phishing']),
    score: z.number(),
    findings: z.array(z.object({ code: z.string(), severity: z.string(), evidence: z.string() })),
  }),
);
export const messageMalwareDetected = defineEvent(
  'message.malware_detected',
  'The virus scanner found malware in a message’s attachments; the message was quarantined when the organisation quarantines malware',
  analysed.extend({ signature: z.string(), quarantined: z.boolean() }),
);
