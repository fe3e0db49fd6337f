import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { OAuthCallbackError } from './errors.ts';
import type { AccountOAuth } from './oauth.ts';
import { accountRouting, accountSchema, accountView } from './routes.ts';

const started = z.object({
  url: z
    .string()
    .describe('The provider’s sign-in page, with PKCE (S256) and the state: send the browser there'),
  state: z.string().describe('Also in the URL; the callback must bring it back within 10 minutes, once'),
});
const redirectTo = z
  .string()
  .trim()
  .min(1)
  .max(2000)
  .nullish()
  .describe(
    'Where the callback sends the browser afterwards (303, with `account_id` and `status`, or `error` and `error_description`): a path or URL on this server or an origin in MAILROOM_CORS_ORIGINS. Absent: the callback answers JSON',
  );

/** The redirect target with the outcome's parameters added. */
function withParams(target: string, params: Record<string, string>): string {
  const url = new URL(target);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

export function accountOAuthRoutes(oauth: AccountOAuth) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const { tags, write } = accountRouting;
    const userOf = (request: FastifyRequest) => {
      const { principal } = authOf(request);
      return principal.kind === 'user' ? principal.userId : null;
    };

    app.post(
      '/v1/accounts/oauth/:provider/start',
      {
        schema: {
          tags,
          summary: 'Start connecting a Google or Microsoft 365 account by signing in',
          description:
            'Answers the provider’s authorization URL. After the user consents, the provider sends the browser to `GET /v1/accounts/oauth/callback`, which tests IMAP and SMTP with the token and connects the account. 422 `oauth_not_configured` when this server has no OAuth client for the provider.',
          params: z.strictObject({ provider: z.enum(['google', 'microsoft']) }),
          body: z
            .strictObject({
              login_hint: z
                .string()
                .trim()
                .max(320)
                .nullish()
                .describe('The address to sign in with; the provider fills it in'),
              name: z.string().trim().max(200).nullish(),
              redirect_to: redirectTo,
            })
            .nullish(),
          response: { 200: started },
        },
        config: { access: write, audit: { action: 'account.oauth_start', targetType: 'account' } },
      },
      async (request) =>
        oauth.start(
          authOf(request).organizationId,
          userOf(request),
          request.params.provider,
          request.body ?? {},
        ),
    );

    app.post(
      '/v1/accounts/:id/oauth/start',
      {
        schema: {
          tags,
          summary: 'Authorise a Google or Microsoft 365 account again',
          description:
            'The same sign-in for an existing OAuth account (e.g. in `auth_failed` after its grant was revoked): the callback renews its tokens and moves it back to `connecting`. The user must sign in with the account’s address.',
          params: z.strictObject({ id: uuidParam }),
          body: z.strictObject({ redirect_to: redirectTo }).nullish(),
          response: { 200: started },
        },
        config: {
          access: write,
          audit: { action: 'account.oauth_reauthorize', targetType: 'account', targetParam: 'id' },
        },
      },
      async (request) =>
        oauth.reauthorize(
          authOf(request).organizationId,
          userOf(request),
          request.params.id,
          request.body ?? {},
        ),
    );

    app.get(
      '/v1/accounts/oauth/callback',
      {
        schema: {
          tags,
          summary: 'Where Google and Microsoft send the browser back (register this URL with them)',
          description:
            'No token: the `state` names the sign-in, once, within 10 minutes. Connects the account (201) or renews the re-authorised one (200) after logging in to IMAP and SMTP with the token; 400 for an unknown, used or expired state or a refused code, 403 `oauth_access_denied` when the user declined, 409 when the address is connected already, 422 `connection_failed` with a `diagnosis`. With `redirect_to`, answers 303 to it instead.',
          querystring: z.object({
            code: z.string().max(4096).optional(),
            state: z.string().max(512).optional(),
            error: z.string().max(200).optional(),
            error_description: z.string().max(2000).optional(),
          }),
          response: { 200: accountSchema, 201: accountSchema },
        },
        config: {
          access: { level: 'public' },
          audit: { action: 'account.oauth_callback', targetType: 'account' },
        },
      },
      async (request, reply) => {
        try {
          const done = await oauth.callback(request.query);
          request.auditTarget = {
            id: done.account.id,
            organizationId: done.account.organizationId,
            actorId: done.userId ?? undefined,
          };
          const status = done.created ? 'connected' : 'reauthorized';
          if (done.redirectTo)
            return reply.redirect(withParams(done.redirectTo, { account_id: done.account.id, status }), 303);
          return reply.status(done.created ? 201 : 200).send(accountView(done.account));
        } catch (err) {
          if (err instanceof OAuthCallbackError && err.redirectTo)
            return reply.redirect(
              withParams(err.redirectTo, { error: err.code, error_description: err.message }),
              303,
            );
          throw err;
        }
      },
    );
  };
}
