// A language model behind one interface: a list of chat messages in, the model's reply out. The
// helpdesk chatbot grounds it on retrieved articles; nothing here knows about articles.

export interface LlmMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface LlmProvider {
  /** The model's reply to the conversation; throws LlmError when there is none. */
  complete(messages: LlmMessage[], options?: { temperature?: number }): Promise<string>;
}

export type LlmErrorCode =
  /** Not answered within the timeout. */
  | 'llm_timeout'
  /** Could not be reached, or answered with a server error or a rate limit. */
  | 'llm_unavailable'
  /** Refused the request (credentials, model, body). */
  | 'llm_rejected'
  /** Answered 200 with something that is not a Chat Completions response. */
  | 'llm_malformed';

export class LlmError extends Error {
  readonly code: LlmErrorCode;
  readonly status: number | null;

  constructor(code: LlmErrorCode, message: string, status: number | null = null) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
