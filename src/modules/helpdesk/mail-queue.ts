// The queue of mail the helpdesk sends on its own (mail.ts sends it), and what each job names.
export const MAIL_QUEUE = 'helpdesk.mail';

export type HelpdeskMail =
  | { kind: 'acknowledgement'; organization_id: string; ticket_id: string; comment_id: string }
  | { kind: 'approval_request'; organization_id: string; ticket_id: string; user_id: string }
  | { kind: 'approval_decision'; organization_id: string; ticket_id: string; approval_id: string }
  | { kind: 'resolution'; organization_id: string; ticket_id: string }
  | { kind: 'mention'; organization_id: string; ticket_id: string; comment_id: string; user_id: string };
