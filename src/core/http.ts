// The HTTP server: Fastify with Zod schemas, OpenAPI 3.1, problem+json errors, request ids,
// metrics, CORS, security headers and body limits. Modules add routes; nothing here knows them.
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import helmet from 'helmet';
import { z } from 'zod';
import { databaseErrorCode } from './db.ts';
import { AppError, type FieldError } from './errors.ts';
import type { Metrics } from './metrics.ts';

export interface HttpOptions {
  logger: Logger;
  metrics: Metrics;
  bodyLimit: number;
  /** Slow or incomplete requests (slowloris) are answered 408 and closed after these. */
  headerTimeoutMs: number;
  requestTimeoutMs: number;
  corsOrigins: string[];
  version: string;
  /** Whose X-Forwarded-For to believe for the client address (rate limits, audit). */
  trustProxy: boolean | number | string[];
  /** Database and queue reachable. */
  ready: () => Promise<Record<string, boolean>>;
  /** In a process that runs the MX: whether it takes new mail (back-pressure), shown at /ready. */
  mail?: () => MailReadiness;
  /** OpenAPI 3.1 `webhooks` (what Mailroom POSTs to receivers) and extra component schemas. */
  openapiWebhooks?: Record<string, unknown>;
  openapiSchemas?: Record<string, unknown>;
}

const queueState = z.object({
  depth: z.number().int(),
  oldest_age_seconds: z.number().int().nullable(),
  limit: z.number().int().nullable().describe('Above this depth the MX refuses new mail; null: no limit'),
  over: z.boolean(),
});
const mailReadiness = z
  .object({
    processing: queueState.describe('Accepted messages waiting to be processed'),
    delivery: queueState.describe('Queued recipients due for delivery'),
    accepting_mail: z.boolean().describe('False while a backlog is over its limit: the MX answers 451 4.3.1'),
    checked_at: z.string().nullable(),
  })
  .describe('Back-pressure: the backlogs and whether the MX takes new mail');
export type MailReadiness = z.infer<typeof mailReadiness>;

/** Browsers cannot set headers on a WebSocket: they offer this subprotocol and the token as another. */
export const BEARER_SUBPROTOCOL = 'mailroom.bearer';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function createHttp(options: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    requestIdHeader: false, // genReqId reads the header itself and refuses unsafe values
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Our onResponse hook logs requests (with the route, not the raw URL that may hold tokens).
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify accepts a hop count at run time although its types omit it.
    trustProxy: options.trustProxy as boolean | string[],
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: true },
    // Errors raised before routing (bad URL encoding, over-long path parameters) are problems too.
    frameworkErrors: (error, request, reply) =>
      sendProblem(reply, request, error.statusCode ?? 400, codeForFastifyError(error), error.message),
    // Node checks the timeouts every connectionsCheckingInterval: often enough to keep them short.
    http: {
      headersTimeout: options.headerTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, options.headerTimeoutMs / 2)),
    },
    requestTimeout: options.requestTimeoutMs,
    // What the HTTP parser refuses (headers too large, a request that stalls) is a problem as well.
    clientErrorHandler: answerClientError,
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(cors, {
    origin: options.corsOrigins.includes('*') ? '*' : options.corsOrigins,
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
  // Security headers, computed once (not per request). The docs page loads its own scripts and styles;
  // the API itself serves only JSON.
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
      },
    },
  });
  app.addHook('onRequest', (request, reply, done) =>
    securityHeaders(request.raw, reply.raw, (err) => done(err as Error | undefined)),
  );
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mailroom API',
        version: options.version,
        description:
          'Self-hosted email and messaging platform. Errors are RFC 9457 problem+json; lists are paginated.',
      },
      // OpenAPI 3.1 fields the plugin passes through but its 3.0-shaped types do not list.
      ...({ webhooks: options.openapiWebhooks } as object),
      components: {
        schemas: options.openapiSchemas as Record<string, never> | undefined,
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An access token from /v1/auth/login or an API key (mrk_…)',
          },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  await app.register(websocket, {
    options: {
      maxPayload: 64 * 1024,
      handleProtocols: (protocols: Set<string>) =>
        protocols.has(BEARER_SUBPROTOCOL) ? BEARER_SUBPROTOCOL : false,
    },
  });

  // Every route that is not public is documented as needing a bearer token.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access && access.level !== 'public' && route.schema && !route.schema.hide) {
      (route.schema as Record<string, unknown>).security = [{ bearerAuth: [] }];
    }
  });

  registerRequestIdAndMetrics(app, options.metrics);
  registerErrorHandling(app);
  registerOperationalRoutes(app, options);
  return app;
}

function registerRequestIdAndMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) {
      request.log.error({ method: request.method, route, status: reply.statusCode }, 'request failed');
    } else {
      request.log.debug(
        { method: request.method, route, status: reply.statusCode, ms: reply.elapsedTime },
        'request',
      );
    }
  });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldError[];
  request_id: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An RFC 9457 problem body (without the request id: a batch item's problem belongs to its request). */
export function problemOf(
  status: number,
  code: string,
  detail: string,
  errors?: FieldError[],
): Omit<Problem, 'request_id'> {
  const body: Omit<Problem, 'request_id'> = {
    type: `urn:mailroom:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
  };
  if (errors?.length) body.errors = errors;
  return body;
}

/** The 400 answer of one batch item (`messages[index]`) whose body failed its schema. */
export function batchItemInvalid(
  index: number,
  issues: { path: PropertyKey[]; message: string }[],
): { index: number; status: 400; problem: Omit<Problem, 'request_id'> } {
  const errors = issues.map((issue) => ({
    field: ['messages', index, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  return {
    index,
    status: 400,
    problem: problemOf(
      400,
      'validation_failed',
      errors.map((e) => `${e.field}: ${e.message}`).join('; '),
      errors,
    ),
  };
}

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  errors?: FieldError[],
  extensions?: Record<string, unknown>,
): FastifyReply {
  const body: Problem = { ...extensions, ...problemOf(status, code, detail, errors), request_id: request.id };
  return reply.status(status).type('application/problem+json').serializer(JSON.stringify).send(body);
}

/**
 * The answer to a request Node's HTTP parser refused before Fastify saw it: problem+json like every
 * other error (not Node's own body), and the connection closed once it is written.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, detail] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'The request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'The request line and headers are larger than the server accepts']
        : [400, 'bad_request', 'The request is not valid HTTP'];
  const body = JSON.stringify({ ...problemOf(status, code, detail), request_id: randomUUID() });
  socket.end(
    `HTTP/1.1 ${status} ${TITLES[status]}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, 404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.headers) reply.headers(error.headers);
      return sendProblem(
        reply,
        request,
        error.status,
        error.code,
        error.message,
        error.errors,
        error.extensions,
      );
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const errors = error.validation.map((v) => ({
        field: fieldName(error.validationContext, v.instancePath, v.params),
        message: v.message ?? 'is invalid',
      }));
      const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      return sendProblem(reply, request, 400, 'validation_failed', detail, errors);
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error }, 'response did not match its schema');
      return sendProblem(reply, request, 500, 'internal_error', 'Internal error');
    }
    const pgCode = databaseErrorCode(error);
    if (pgCode === '23505') return sendProblem(reply, request, 409, 'conflict', 'That already exists');
    if (pgCode === '23503')
      return sendProblem(reply, request, 409, 'conflict', 'A referenced resource is missing');
    if (typeof pgCode === 'string' && /^22[0-9A-Z]{3}$/.test(pgCode)) {
      return sendProblem(reply, request, 400, 'bad_request', 'A value is out of range or malformed');
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendProblem(reply, request, status, codeForFastifyError(error), error.message);
    }
    // A failed query's message carries its parameters (hashes, sealed secrets): log the driver's error only.
    request.log.error({ err: withoutQuery(error) }, 'unhandled error');
    return sendProblem(reply, request, 500, 'internal_error', 'Internal error');
  });
}

function withoutQuery(error: Error): Error {
  return error.name === 'DrizzleQueryError' && error.cause instanceof Error ? error.cause : error;
}

function fieldName(context: string | undefined, instancePath: string, params: unknown): string {
  const base = (context ?? 'body').replace('querystring', 'query');
  const path = instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = (params as { keys?: string[] } | undefined)?.keys;
  const key = extra?.length ? extra.join(',') : '';
  return [base, path, key].filter(Boolean).join('.');
}

function codeForFastifyError(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'malformed_body';
    default:
      return error.statusCode === 400 ? 'bad_request' : 'client_error';
  }
}

function registerOperationalRoutes(app: FastifyInstance, options: HttpOptions): void {
  const z_ = app.withTypeProvider<ZodTypeProvider>();
  z_.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
      config: { access: { level: 'public' } },
    },
    async () => ({ status: 'ok' as const }),
  );
  const backlogSchema = mailReadiness;
  z_.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: database and job queue reachable',
        description:
          'In a process that runs the MX, `mail` also shows the processing and delivery backlogs and whether the MX takes new mail; that does not change readiness (see /ready/mail).',
        response: {
          200: z.object({
            status: z.literal('ready'),
            checks: z.record(z.string(), z.boolean()),
            mail: backlogSchema.optional(),
          }),
          503: z.object({
            status: z.literal('unavailable'),
            checks: z.record(z.string(), z.boolean()),
            mail: backlogSchema.optional(),
          }),
        },
      },
      config: { access: { level: 'public' } },
    },
    async (_request, reply) => {
      const checks = await options.ready();
      const ok = Object.values(checks).every(Boolean);
      const mail = options.mail?.();
      const body = mail ? { checks, mail } : { checks };
      if (ok) return { status: 'ready' as const, ...body };
      return reply.status(503).send({ status: 'unavailable' as const, ...body });
    },
  );
  if (options.mail) {
    const mail = options.mail;
    z_.get(
      '/ready/mail',
      {
        schema: {
          tags: ['operations'],
          summary:
            'Whether the MX takes new mail: 503 while a backlog is over its limit (for load balancers)',
          response: {
            200: z.object({ status: z.literal('accepting'), mail: backlogSchema }),
            503: z.object({ status: z.literal('deferring'), mail: backlogSchema }),
          },
        },
        config: { access: { level: 'public' } },
      },
      async (_request, reply) => {
        const state = mail();
        if (state.accepting_mail) return { status: 'accepting' as const, mail: state };
        return reply.status(503).send({ status: 'deferring' as const, mail: state });
      },
    );
  }
  app.get(
    '/metrics',
    { schema: { hide: true }, config: { access: { level: 'public' } } },
    async (_req, reply) => {
      reply.type(options.metrics.registry.contentType);
      return options.metrics.registry.metrics();
    },
  );
  app.get('/openapi.json', { schema: { hide: true }, config: { access: { level: 'public' } } }, async () =>
    app.swagger(),
  );
}

/** Who asked, from where: carried into services for audit and security records. */
export interface RequestMeta {
  ip: string;
  requestId: string;
  userAgent?: string;
}

export function metaOf(request: FastifyRequest): RequestMeta {
  const ua = request.headers['user-agent'];
  return {
    ip: request.ip,
    requestId: request.id,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : undefined,
  };
}
