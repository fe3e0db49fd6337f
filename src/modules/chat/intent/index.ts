// Mail-chat request parsing: parseRequest turns "what did Alice send me about the invoice last week?"
// into an intent with people, dates, topics, folder and flags, deterministically and without a model.
export { parseRequest } from './grammar.ts';
export type {
  Intent,
  Metric,
  ParseContext,
  ParsedRequest,
  PersonReference,
  PersonRole,
  RequestParams,
} from './types.ts';
