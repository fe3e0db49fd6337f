import {
  boolean,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamptz,
  uuid,
} from '../../core/orm.ts';

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const STATUSES = [
  'open',
  'approval-pending',
  'approved',
  'rejected',
  'in-progress',
  'pending',
  'resolved',
  'closed',
] as const;
export type TicketStatus = (typeof STATUSES)[number];
export type AgentRole = 'agent' | 'supervisor' | 'approver';
export type Assignment = 'manual' | 'round_robin' | 'least_loaded';
export type TicketSource = 'mail' | 'api' | 'chat' | 'split';

export interface CustomFieldDefinition {
  key: string;
  label: string;
  type: 'text' | 'number' | 'boolean' | 'date' | 'select';
  options?: string[];
  required?: boolean;
}

export interface CommentAttachment {
  filename: string | null;
  content_type: string;
  size: number;
}

export const helpdeskAgents = pgTable(
  'helpdesk_agents',
  {
    organizationId: uuid('organization_id').notNull(),
    userId: uuid('user_id').notNull(),
    role: text('role').$type<AgentRole>().notNull(),
    active: boolean('active').notNull().default(true),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.userId] })],
);

export const helpdeskTeams = pgTable('helpdesk_teams', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  assignment: text('assignment').$type<Assignment>().notNull(),
  lastAssignedUserId: uuid('last_assigned_user_id'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskTeamMembers = pgTable(
  'helpdesk_team_members',
  {
    teamId: uuid('team_id').notNull(),
    organizationId: uuid('organization_id').notNull(),
    userId: uuid('user_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.userId] })],
);

export const helpdeskDepartments = pgTable('helpdesk_departments', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskCategories = pgTable('helpdesk_categories', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  needsApproval: boolean('needs_approval').notNull().default(false),
  approverIds: uuid('approver_ids').array().notNull().default([]),
  teamId: uuid('team_id'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskCustomers = pgTable('helpdesk_customers', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  domains: text('domains').array().notNull().default([]),
  notes: text('notes'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskContacts = pgTable('helpdesk_contacts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  email: text('email').notNull(),
  name: text('name'),
  customerId: uuid('customer_id'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskDesks = pgTable('helpdesk_desks', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  teamId: uuid('team_id'),
  defaultPriority: text('default_priority').$type<Priority>().notNull(),
  customFields: jsonb('custom_fields').$type<CustomFieldDefinition[]>().notNull(),
  signature: text('signature'),
  autoReply: boolean('auto_reply').notNull().default(true),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const helpdeskDeskAddresses = pgTable(
  'helpdesk_desk_addresses',
  {
    organizationId: uuid('organization_id').notNull(),
    address: text('address').notNull(),
    deskId: uuid('desk_id').notNull(),
    mailboxId: uuid('mailbox_id'),
    aliasId: uuid('alias_id'),
    position: smallint('position').notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.address] })],
);

export const helpdeskTickets = pgTable('helpdesk_tickets', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  number: integer('number').notNull(),
  deskId: uuid('desk_id').notNull(),
  subject: text('subject').notNull(),
  requesterId: uuid('requester_id').notNull(),
  customerId: uuid('customer_id'),
  categoryId: uuid('category_id'),
  departmentId: uuid('department_id'),
  teamId: uuid('team_id'),
  assigneeId: uuid('assignee_id'),
  priority: text('priority').$type<Priority>().notNull(),
  status: text('status').$type<TicketStatus>().notNull(),
  tags: text('tags').array().notNull().default([]),
  customFields: jsonb('custom_fields').$type<Record<string, unknown>>().notNull(),
  dueAt: timestamptz('due_at'),
  source: text('source').$type<TicketSource>().notNull(),
  mergedIntoId: uuid('merged_into_id'),
  comments: integer('comments').notNull().default(0),
  firstResponseAt: timestamptz('first_response_at'),
  lastCustomerAt: timestamptz('last_customer_at'),
  lastAgentAt: timestamptz('last_agent_at'),
  resolvedAt: timestamptz('resolved_at'),
  closedAt: timestamptz('closed_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const helpdeskComments = pgTable('helpdesk_comments', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  ticketId: uuid('ticket_id').notNull(),
  visibility: text('visibility').$type<'public' | 'internal'>().notNull(),
  authorType: text('author_type').$type<'customer' | 'agent' | 'system'>().notNull(),
  authorUserId: uuid('author_user_id'),
  authorContactId: uuid('author_contact_id'),
  body: text('body').notNull(),
  messageId: uuid('message_id'),
  messageIdHeader: text('message_id_header'),
  attachments: jsonb('attachments').$type<CommentAttachment[]>().notNull(),
  mentions: uuid('mentions').array().notNull().default([]),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskTicketMessages = pgTable(
  'helpdesk_ticket_messages',
  {
    organizationId: uuid('organization_id').notNull(),
    messageIdHeader: text('message_id_header').notNull(),
    ticketId: uuid('ticket_id').notNull(),
    kind: text('kind').$type<'conversation' | 'approval'>().notNull(),
    approverId: uuid('approver_id'),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.messageIdHeader] })],
);

export const helpdeskIntake = pgTable(
  'helpdesk_intake',
  {
    messageId: uuid('message_id').notNull(),
    deskId: uuid('desk_id').notNull(),
    organizationId: uuid('organization_id').notNull(),
    status: text('status').$type<'pending' | 'filed' | 'ignored'>().notNull(),
    reason: text('reason'),
    ticketId: uuid('ticket_id'),
    /** The lower-cased From address of filed mail, which loop protection counts. */
    sender: text('sender'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    processedAt: timestamptz('processed_at'),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.deskId] })],
);

export const helpdeskApprovals = pgTable('helpdesk_approvals', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  ticketId: uuid('ticket_id').notNull(),
  approverId: uuid('approver_id').notNull(),
  decision: text('decision').$type<'approved' | 'rejected'>().notNull(),
  comment: text('comment'),
  via: text('via').$type<'api' | 'mail'>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type TicketRow = typeof helpdeskTickets.$inferSelect;
export type CommentRow = typeof helpdeskComments.$inferSelect;
export type DeskRow = typeof helpdeskDesks.$inferSelect;
export type DeskAddressRow = typeof helpdeskDeskAddresses.$inferSelect;
export type ContactRow = typeof helpdeskContacts.$inferSelect;
export type CustomerRow = typeof helpdeskCustomers.$inferSelect;
export type CategoryRow = typeof helpdeskCategories.$inferSelect;
export type DepartmentRow = typeof helpdeskDepartments.$inferSelect;
export type TeamRow = typeof helpdeskTeams.$inferSelect;
export type AgentRow = typeof helpdeskAgents.$inferSelect;
export type ApprovalRow = typeof helpdeskApprovals.$inferSelect;
