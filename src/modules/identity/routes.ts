import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { userOf } from '../../core/auth.ts';
import type { Db } from '../../core/db.ts';
import { AppError } from '../../core/errors.ts';
import { metaOf } from '../../core/http.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery, toPage } from '../../core/pagination.ts';
import type { AuditService } from '../audit/service.ts';
import { securityEventSchema } from '../audit/routes.ts';
import type { IdentityService } from './service.ts';
import type { SessionRow, UserRow } from './tables.ts';

export interface InvitationGate {
  /** True when the token is a live invitation for this email. */
  isValid(token: string, email: string): Promise<boolean>;
  /** Accepts within the registering account's transaction; throws (rolling it back) when it cannot. */
  acceptIn(tx: Db, token: string, user: { id: string; email: string }): Promise<unknown>;
}

export interface IdentityRouteDeps {
  identity: IdentityService;
  audit: AuditService;
  registration: 'open' | 'invite' | 'closed';
  invitations: InvitationGate;
}

const email = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: 'must be an email address' }).max(254));
const password = z.string().min(1).max(1024);
const code = z.string().min(6).max(12);

export const userSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  email_verified: z.boolean(),
  mfa_enabled: z.boolean(),
  is_superadmin: z.boolean(),
  created_at: z.string(),
});

const tokenPairSchema = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
  session_id: z.uuid(),
});

const mfaRequiredSchema = z.object({ mfa_required: z.literal(true), mfa_token: z.string() });

const sessionSchema = z.object({
  id: z.uuid(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: z.string(),
  last_used_at: z.string(),
  expires_at: z.string(),
  current: z.boolean(),
});

const recoveryCodesSchema = z.object({ recovery_codes: z.array(z.string()) });

export function userView(u: UserRow): z.infer<typeof userSchema> {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    email_verified: u.emailVerifiedAt !== null,
    mfa_enabled: u.mfaEnabledAt !== null,
    is_superadmin: u.isSuperadmin,
    created_at: u.createdAt.toISOString(),
  };
}

function sessionView(s: SessionRow, currentId: string): z.infer<typeof sessionSchema> {
  return {
    id: s.id,
    ip: s.ip,
    user_agent: s.userAgent,
    created_at: s.createdAt.toISOString(),
    last_used_at: s.lastUsedAt.toISOString(),
    expires_at: s.expiresAt.toISOString(),
    current: s.id === currentId,
  };
}

export function identityRoutes(deps: IdentityRouteDeps) {
  const { identity } = deps;
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['auth'];
    const publicAccess = { access: { level: 'public' as const } };
    const userAccess = { access: { level: 'user' as const } };

    app.post(
      '/v1/auth/register',
      {
        schema: {
          tags,
          summary: 'Create an account (and sign in)',
          body: z.strictObject({
            email,
            password,
            name: z.string().trim().max(200).optional(),
            invitation_token: z.string().max(200).optional(),
          }),
          response: { 201: z.object({ user: userSchema, tokens: tokenPairSchema }) },
        },
        config: { ...publicAccess, audit: { action: 'user.register', targetType: 'user' } },
      },
      async (request, reply) => {
        const body = request.body;
        if (deps.registration !== 'open') {
          const invited =
            body.invitation_token && (await deps.invitations.isValid(body.invitation_token, body.email));
          if (!invited || deps.registration === 'closed') {
            throw new AppError(
              403,
              'registration_closed',
              deps.registration === 'closed'
                ? 'Registration is closed on this server'
                : 'Registration needs a valid invitation for this email address',
            );
          }
        }
        const token = body.invitation_token;
        // The invitation is accepted in the account's own transaction: no account without it.
        const { user, tokens } = await identity.register(
          body,
          metaOf(request),
          token ? (tx, created) => deps.invitations.acceptIn(tx, token, created) : undefined,
        );
        request.auditTarget = { id: user.id, actorId: user.id };
        return reply.status(201).send({ user: userView(user), tokens });
      },
    );

    app.post(
      '/v1/auth/login',
      {
        schema: {
          tags,
          summary: 'Sign in with email and password',
          description: 'Accounts with MFA get `mfa_required` and an `mfa_token` for /v1/auth/mfa/challenge.',
          body: z.strictObject({ email, password }),
          response: { 200: z.union([tokenPairSchema, mfaRequiredSchema]) },
        },
        config: { ...publicAccess, audit: { action: 'session.login', targetType: 'session' } },
      },
      async (request) => {
        const result = await identity.login(request.body, metaOf(request));
        if ('session_id' in result) request.auditTarget = { id: result.session_id };
        return result;
      },
    );

    app.post(
      '/v1/auth/mfa/challenge',
      {
        schema: {
          tags,
          summary: 'Finish signing in with a TOTP code or a recovery code',
          body: z.strictObject({
            mfa_token: z.string().max(2000),
            code: code.optional(),
            recovery_code: z.string().max(32).optional(),
          }),
          response: { 200: tokenPairSchema },
        },
        config: { ...publicAccess, audit: { action: 'session.login_mfa', targetType: 'session' } },
      },
      async (request) => {
        const tokens = await identity.completeMfaLogin(request.body, metaOf(request));
        request.auditTarget = { id: tokens.session_id };
        return tokens;
      },
    );

    app.post(
      '/v1/auth/refresh',
      {
        schema: {
          tags,
          summary: 'Exchange a refresh token for new tokens (the old one is spent)',
          body: z.strictObject({ refresh_token: z.string().min(1).max(200) }),
          response: { 200: tokenPairSchema },
        },
        config: { ...publicAccess, audit: { action: 'session.refresh', targetType: 'session' } },
      },
      async (request) => {
        const tokens = await identity.refresh(request.body.refresh_token, metaOf(request));
        request.auditTarget = { id: tokens.session_id };
        return tokens;
      },
    );

    app.post(
      '/v1/auth/logout',
      {
        schema: { tags, summary: 'End the current session', response: { 204: z.null() } },
        config: { ...userAccess, audit: { action: 'session.logout', targetType: 'session' } },
      },
      async (request, reply) => {
        const principal = userOf(request);
        await identity.logout(principal);
        request.auditTarget = { id: principal.sessionId };
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/auth/me',
      { schema: { tags, summary: 'The signed-in user', response: { 200: userSchema } }, config: userAccess },
      async (request) => userView(await identity.getUser(userOf(request).userId)),
    );

    app.patch(
      '/v1/auth/me',
      {
        schema: {
          tags,
          summary: 'Update your profile',
          body: z.strictObject({ name: z.string().trim().max(200) }),
          response: { 200: userSchema },
        },
        config: { ...userAccess, audit: { action: 'user.update', targetType: 'user' } },
      },
      async (request) => {
        const user = await identity.updateProfile(userOf(request).userId, request.body);
        request.auditTarget = { id: user.id };
        return userView(user);
      },
    );

    app.post(
      '/v1/auth/password',
      {
        schema: {
          tags,
          summary: 'Change your password (ends your other sessions)',
          body: z.strictObject({ current_password: password, new_password: password }),
          response: { 204: z.null() },
        },
        config: { ...userAccess, audit: { action: 'user.change_password', targetType: 'user' } },
      },
      async (request, reply) => {
        const principal = userOf(request);
        await identity.changePassword(principal, request.body, metaOf(request));
        request.auditTarget = { id: principal.userId };
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/auth/verify-email/send',
      {
        schema: {
          tags,
          summary: 'Mail a new email verification token',
          response: { 202: z.object({ status: z.literal('sent') }) },
        },
        config: { ...userAccess, audit: { action: 'user.send_verification', targetType: 'user' } },
      },
      async (request, reply) => {
        await identity.sendEmailVerification(userOf(request).userId);
        request.auditTarget = { id: userOf(request).userId };
        return reply.status(202).send({ status: 'sent' as const });
      },
    );

    app.post(
      '/v1/auth/verify-email',
      {
        schema: {
          tags,
          summary: 'Verify your email address with the mailed token',
          body: z.strictObject({ token: z.string().min(1).max(200) }),
          response: { 200: userSchema },
        },
        config: { ...publicAccess, audit: { action: 'user.verify_email', targetType: 'user' } },
      },
      async (request) => {
        const user = await identity.verifyEmail(request.body.token);
        request.auditTarget = { id: user.id, actorId: user.id };
        return userView(user);
      },
    );

    app.post(
      '/v1/auth/password-reset',
      {
        schema: {
          tags,
          summary: 'Mail a password reset token (answers the same whether or not the account exists)',
          body: z.strictObject({ email }),
          response: { 202: z.object({ status: z.literal('accepted') }) },
        },
        config: { ...publicAccess, audit: { action: 'user.request_password_reset' } },
      },
      async (request, reply) => {
        await identity.requestPasswordReset(request.body.email, metaOf(request));
        return reply.status(202).send({ status: 'accepted' as const });
      },
    );

    app.post(
      '/v1/auth/password-reset/confirm',
      {
        schema: {
          tags,
          summary: 'Set a new password with a reset token (ends every session)',
          body: z.strictObject({ token: z.string().min(1).max(200), new_password: password }),
          response: { 204: z.null() },
        },
        config: { ...publicAccess, audit: { action: 'user.reset_password', targetType: 'user' } },
      },
      async (request, reply) => {
        await identity.resetPassword(request.body, metaOf(request));
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/auth/mfa/setup',
      {
        schema: {
          tags,
          summary: 'Start TOTP enrolment: a secret, an otpauth URI and a QR code (PNG data URL)',
          response: { 200: z.object({ secret: z.string(), otpauth_uri: z.string(), qr_code: z.string() }) },
        },
        config: { ...userAccess, audit: { action: 'user.mfa_setup', targetType: 'user' } },
      },
      async (request) => identity.mfaSetup(userOf(request).userId),
    );

    app.post(
      '/v1/auth/mfa/enable',
      {
        schema: {
          tags,
          summary: 'Confirm enrolment with a first code; returns one-time recovery codes (shown once)',
          body: z.strictObject({ code, password }),
          response: { 200: recoveryCodesSchema },
        },
        config: { ...userAccess, audit: { action: 'user.mfa_enable', targetType: 'user' } },
      },
      async (request) => ({
        recovery_codes: await identity.mfaEnable(userOf(request).userId, request.body, metaOf(request)),
      }),
    );

    app.post(
      '/v1/auth/mfa/disable',
      {
        schema: {
          tags,
          summary: 'Turn MFA off (password and a code or recovery code)',
          body: z.strictObject({
            password,
            code: code.optional(),
            recovery_code: z.string().max(32).optional(),
          }),
          response: { 204: z.null() },
        },
        config: { ...userAccess, audit: { action: 'user.mfa_disable', targetType: 'user' } },
      },
      async (request, reply) => {
        await identity.mfaDisable(userOf(request).userId, request.body, metaOf(request));
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/auth/mfa/verify',
      {
        schema: {
          tags,
          summary: 'Step-up: confirm a TOTP code on the current session',
          description:
            'Operations that need a recent second factor (credential exports, within the last 10 minutes) accept this session for a while after it. A login finished with a TOTP code counts as one too. Recovery codes are not accepted here.',
          body: z.strictObject({ code }),
          response: {
            200: z.object({
              mfa_verified_at: z.string().describe('When this session passed the check'),
            }),
          },
        },
        config: { ...userAccess, audit: { action: 'session.mfa_verify', targetType: 'session' } },
      },
      async (request) => {
        const principal = userOf(request);
        const at = await identity.verifyMfa(principal, request.body.code, metaOf(request));
        request.auditTarget = { id: principal.sessionId };
        return { mfa_verified_at: at.toISOString() };
      },
    );

    app.post(
      '/v1/auth/mfa/recovery-codes',
      {
        schema: {
          tags,
          summary: 'Replace your recovery codes (needs a current TOTP code)',
          body: z.strictObject({ code }),
          response: { 200: recoveryCodesSchema },
        },
        config: { ...userAccess, audit: { action: 'user.mfa_recovery_codes', targetType: 'user' } },
      },
      async (request) => ({
        recovery_codes: await identity.regenerateRecoveryCodes(
          userOf(request).userId,
          request.body.code,
          metaOf(request),
        ),
      }),
    );

    app.get(
      '/v1/auth/sessions',
      {
        schema: {
          tags,
          summary: 'Your live sessions',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(sessionSchema) },
        },
        config: userAccess,
      },
      async (request) => {
        const principal = userOf(request);
        const all = await identity.listSessions(principal.userId);
        const { page, page_size } = request.query;
        const slice = all.slice((page - 1) * page_size, page * page_size);
        return toPage(
          slice.map((s) => sessionView(s, principal.sessionId)),
          all.length,
          request.query,
        );
      },
    );

    app.delete(
      '/v1/auth/sessions/:id',
      {
        schema: {
          tags,
          summary: 'End one of your sessions',
          params: z.strictObject({ id: uuidParam }),
          response: { 204: z.null() },
        },
        config: { ...userAccess, audit: { action: 'session.revoke', targetType: 'session' } },
      },
      async (request, reply) => {
        await identity.revokeSession(userOf(request).userId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/auth/security-events',
      {
        schema: {
          tags,
          summary: 'Security events on your account (failed logins, MFA, password changes)',
          querystring: z.strictObject({ ...pageQuery, kind: z.string().max(64).optional() }),
          response: { 200: pageOf(securityEventSchema) },
        },
        config: userAccess,
      },
      async (request) =>
        deps.audit.listSecurityEvents(
          { userId: userOf(request).userId, kind: request.query.kind },
          request.query,
        ),
    );
  };
}
