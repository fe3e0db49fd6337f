// A stand-in for an OpenAI-compatible Chat Completions endpoint on loopback: `POST /v1/chat/completions`
// with OpenAI's documented request (`model`, `messages` of `{role, content}`, optional `temperature` 0–2,
// `stream`) and response (`{id, object: "chat.completion", created, model, choices: [{index, message:
// {role: "assistant", content}, finish_reason}], usage}`), its 401 for a missing or wrong bearer key, its
// 400 `invalid_request_error` for a malformed body and its 404 `model_not_found`. Instead of a model it
// answers deterministically from the context it is given: the first sentence of article [1] of the
// system message, citing [1] — or NO_ANSWER when no word of the question occurs in any article. A test
// can make it fail (a server error, a hang, a body that is not JSON) and can read what it was sent.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type LlmFailure = 'unavailable' | 'hang' | 'malformed';

export interface LoggedCompletion {
  authorization: string | null;
  body: { model: string; messages: { role: string; content: string }[]; temperature?: number };
}

export interface LlmServerOptions {
  apiKey: string;
  model: string;
}

export interface TestLlmServer {
  /** The API root to configure (MAILROOM_LLM_URL): `http://127.0.0.1:<port>/v1`. */
  url: string;
  requests: LoggedCompletion[];
  /** The next request gets this instead of an answer. */
  failNext(mode: LlmFailure): void;
  /** The next answer's content is this (e.g. NO_ANSWER), in a well-formed response. */
  replyNext(content: string): void;
  close(): Promise<void>;
}

const ROLES = new Set(['system', 'user', 'assistant', 'developer', 'tool']);
const STOP = new Set([
  'what',
  'when',
  'where',
  'which',
  'with',
  'that',
  'this',
  'there',
  'their',
  'your',
  'have',
  'does',
]);

function openAiError(
  res: http.ServerResponse,
  status: number,
  type: string,
  message: string,
  code: string | null,
  param: string | null = null,
) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type, param, code } }));
}

/** Article blocks of the system message: `[n] Title`, then lines up to the next block. */
function articlesOf(system: string): { n: number; title: string; body: string }[] {
  const out: { n: number; title: string; body: string }[] = [];
  for (const block of system.split(/\n-{3,}\n/)) {
    const m = /(?:^|\n)\[(\d+)\] ([^\n]*)\n(?:URL: [^\n]*\n)?([\s\S]*)$/.exec(block);
    if (m) out.push({ n: Number(m[1]), title: m[2]!, body: m[3]!.trim() });
  }
  return out;
}

function answerFor(messages: { role: string; content: string }[]): string {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n');
  const question = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const articles = articlesOf(system);
  const words =
    question
      .toLowerCase()
      .match(/[a-z0-9]{4,}/g)
      ?.filter((w) => !STOP.has(w)) ?? [];
  const text = articles.map((a) => `${a.title} ${a.body}`.toLowerCase()).join(' ');
  // Stems are close enough for a test: "passwords" finds "password".
  const found = words.some((w) => text.includes(w.slice(0, Math.max(4, w.length - 2))));
  if (!articles.length || !found) return 'NO_ANSWER';
  const first = articles.find((a) => a.n === 1) ?? articles[0]!;
  const body = first.body.replace(/^#+\s.*$/gm, '').trim();
  const sentence = /[^.!?]*[.!?]/.exec(body)?.[0]?.trim() ?? body.split('\n')[0]!;
  return `${sentence} [${first.n}]`;
}

export async function startLlmServer(options: LlmServerOptions): Promise<TestLlmServer> {
  const requests: LoggedCompletion[] = [];
  const failures: LlmFailure[] = [];
  const replies: string[] = [];
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions')
        return openAiError(
          res,
          404,
          'invalid_request_error',
          `Unknown request URL: ${req.method} ${req.url}`,
          'unknown_url',
        );
      const authorization = req.headers.authorization ?? null;
      if (authorization !== `Bearer ${options.apiKey}`)
        return openAiError(
          res,
          401,
          'invalid_request_error',
          authorization ? 'Incorrect API key provided.' : "You didn't provide an API key.",
          'invalid_api_key',
        );
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
        return openAiError(res, 400, 'invalid_request_error', 'Content-Type must be application/json', null);
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return openAiError(
          res,
          400,
          'invalid_request_error',
          'We could not parse the JSON body of your request.',
          null,
        );
      }
      if (!body || typeof body !== 'object' || Array.isArray(body))
        return openAiError(res, 400, 'invalid_request_error', 'The body must be a JSON object.', null);
      if (typeof body.model !== 'string' || !body.model)
        return openAiError(
          res,
          400,
          'invalid_request_error',
          'you must provide a model parameter',
          null,
          'model',
        );
      if (!Array.isArray(body.messages) || body.messages.length === 0)
        return openAiError(
          res,
          400,
          'invalid_request_error',
          "Invalid 'messages': empty array.",
          'empty_array',
          'messages',
        );
      for (const [i, m] of body.messages.entries()) {
        if (!m || typeof m !== 'object' || !ROLES.has(m.role) || typeof m.content !== 'string')
          return openAiError(
            res,
            400,
            'invalid_request_error',
            `Invalid 'messages[${i}]': each message needs a role (system, user, assistant) and string content.`,
            'invalid_value',
            `messages[${i}]`,
          );
      }
      if (
        body.temperature !== undefined &&
        (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 2)
      )
        return openAiError(
          res,
          400,
          'invalid_request_error',
          "Invalid 'temperature': must be between 0 and 2.",
          'decimal_above_max_value',
          'temperature',
        );
      if (body.stream === true)
        return openAiError(
          res,
          400,
          'invalid_request_error',
          'This test server does not stream.',
          null,
          'stream',
        );
      if (body.model !== options.model)
        return openAiError(
          res,
          404,
          'invalid_request_error',
          `The model \`${body.model}\` does not exist or you do not have access to it.`,
          'model_not_found',
        );
      requests.push({ authorization, body });

      const failure = failures.shift();
      if (failure === 'hang') {
        hanging.add(res);
        return;
      }
      if (failure === 'unavailable')
        return openAiError(
          res,
          500,
          'server_error',
          'The server had an error while processing your request.',
          null,
        );
      if (failure === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"id": "chatcmpl-cut", "choices": [');
      }
      const content = replies.shift() ?? answerFor(body.messages);
      const promptTokens = JSON.stringify(body.messages).length >> 2;
      const completionTokens = content.length >> 2;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: `chatcmpl-test${requests.length}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content, refusal: null },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: completionTokens,
            total_tokens: promptTokens + completionTokens,
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext: (mode) => failures.push(mode),
    replyNext: (content) => replies.push(content),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
