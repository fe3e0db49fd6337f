// Any endpoint that speaks OpenAI's Chat Completions API (OpenAI itself, Azure's OpenAI-compatible
// endpoint, vLLM, llama.cpp's server, Ollama's /v1, LocalAI, LiteLLM): `POST {base}/chat/completions`
// with `{model, messages, temperature}`, the reply in `choices[0].message.content`. The base URL is the
// operator's setting (MAILROOM_LLM_URL), so a model on the operator's own network is allowed. The API
// key goes only into the Authorization header: no error message, log line or thrown value carries it.
import { LlmError, type LlmMessage, type LlmProvider } from './types.ts';

export interface LlmCompletion {
  content: string;
  /** `usage.total_tokens` of the response; null when the endpoint reports no usage. */
  totalTokens: number | null;
}

export interface OpenAiCompatibleOptions {
  /** The API root, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; none for a local server that needs none. */
  apiKey?: string;
  model: string;
  timeoutMs: number;
  /** Default sampling temperature (0–2). */
  temperature?: number;
  /** Longest reply accepted, in characters (a runaway model is cut off, not stored whole). */
  maxReplyChars?: number;
}

/** The most of an error body quoted in an LlmError. */
const ERROR_EXCERPT = 300;

export class OpenAiCompatibleLlm implements LlmProvider {
  readonly #o: OpenAiCompatibleOptions;
  readonly #url: string;

  constructor(options: OpenAiCompatibleOptions) {
    this.#o = options;
    this.#url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  get model(): string {
    return this.#o.model;
  }

  async complete(messages: LlmMessage[], options: { temperature?: number } = {}): Promise<string> {
    return (await this.completion(messages, options)).content;
  }

  /** The reply with the tokens the endpoint says it spent (`usage.total_tokens`), when it says. */
  async completion(messages: LlmMessage[], options: { temperature?: number } = {}): Promise<LlmCompletion> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;
    const body = JSON.stringify({
      model: this.#o.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      temperature: options.temperature ?? this.#o.temperature ?? 0.2,
      stream: false,
    });
    let response: Response;
    try {
      response = await fetch(this.#url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw requestFailure(err, this.#o.timeoutMs);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw requestFailure(err, this.#o.timeoutMs);
    }
    if (!response.ok) throw statusFailure(response.status, text, this.#o.apiKey);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new LlmError('llm_malformed', 'the model endpoint answered with something other than JSON');
    }
    const reply = parsed as {
      choices?: { message?: { content?: unknown } }[];
      usage?: { total_tokens?: unknown };
    } | null;
    const content = reply?.choices?.[0]?.message?.content;
    if (typeof content !== 'string')
      throw new LlmError('llm_malformed', 'the reply has no choices[0].message.content string');
    const total = reply?.usage?.total_tokens;
    return {
      content: content.slice(0, this.#o.maxReplyChars ?? 8_000),
      totalTokens: typeof total === 'number' && Number.isFinite(total) && total >= 0 ? total : null,
    };
  }
}

function requestFailure(err: unknown, timeoutMs: number): LlmError {
  const name = (err as Error)?.name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return new LlmError('llm_timeout', `the model did not answer within ${timeoutMs} ms`);
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return new LlmError(
    'llm_unavailable',
    `the model endpoint could not be reached${cause?.code ? ` (${cause.code})` : ''}`,
  );
}

/** OpenAI's error body is `{error: {message, type, code}}`; its message is quoted, shortened, without the key. */
function statusFailure(status: number, text: string, apiKey: string | undefined): LlmError {
  let detail = '';
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    // A server that quotes the key back (OpenAI masks it; others may not) does not get it into a log.
    if (typeof message === 'string')
      detail = `: ${(apiKey ? message.split(apiKey).join('[redacted]') : message).slice(0, ERROR_EXCERPT)}`;
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  const code = status === 429 || status >= 500 ? 'llm_unavailable' : 'llm_rejected';
  return new LlmError(code, `the model endpoint answered ${status}${detail}`, status);
}
