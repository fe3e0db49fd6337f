// Identity: accounts, sessions with rotating refresh tokens, mailed single-use tokens and TOTP MFA.
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { Secret, TOTP } from 'otpauth';
import type { UserPrincipal } from '../../core/auth.ts';
import type { Secrets } from '../../core/crypto.ts';
import { randomToken, sha256 } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import {
  AppError,
  badRequest,
  conflict,
  forbidden,
  notFound,
  tooManyRequests,
  unauthorized,
} from '../../core/errors.ts';
import type { RequestMeta } from '../../core/http.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import type { Mailer } from '../../core/mailer.ts';
import { burnPasswordCheck, hashPassword, verifyPassword } from '../../core/passwords.ts';
import type { Limit, RateLimiter } from '../../core/ratelimit.ts';
import type { AuditService } from '../audit/service.ts';
import * as store from './store.ts';
import type { SessionRow, UserRow } from './tables.ts';

const ISSUER = 'mailroom';
export const PASSWORD_RESET_QUEUE = 'identity.password_reset';
const MFA_TOKEN_TTL = 300;
const VERIFY_EMAIL_TTL = 48 * 3600;
const RESET_PASSWORD_TTL = 3600;
const RECOVERY_CODE_COUNT = 10;
/** How long a positive session check is trusted in this process; revocations here apply at once. */
const SESSION_CACHE_MS = 5_000;

const LIMITS = {
  loginIp: { name: 'login:ip', limit: 20, windowSeconds: 60 },
  loginAccount: { name: 'login:account', limit: 10, windowSeconds: 900 },
  registerIp: { name: 'register:ip', limit: 10, windowSeconds: 3600 },
  resetIp: { name: 'reset:ip', limit: 10, windowSeconds: 3600 },
  resetAccount: { name: 'reset:account', limit: 3, windowSeconds: 3600 },
  mfaIp: { name: 'mfa:ip', limit: 20, windowSeconds: 60 },
  mfaAccount: { name: 'mfa:account', limit: 10, windowSeconds: 900 },
  refreshIp: { name: 'refresh:ip', limit: 120, windowSeconds: 60 },
} satisfies Record<string, Limit>;

export interface IdentityOptions {
  db: Db;
  secrets: Secrets;
  mailer: Mailer;
  limiter: RateLimiter;
  audit: AuditService;
  jobs: Jobs;
  publicUrl: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
  session_id: string;
}

export type LoginResult = TokenPair | { mfa_required: true; mfa_token: string };

export class IdentityService {
  readonly #o: IdentityOptions;
  readonly #sessionCache = new Map<string, { principal: UserPrincipal; until: number; expiresAt: number }>();
  /** Access tokens whose signature already verified, with their claims (saves an HMAC per request). */
  readonly #verifiedTokens = new Map<string, { sub: string; sid: string; exp: number }>();

  constructor(options: IdentityOptions) {
    this.#o = options;
  }

  // ---- accounts --------------------------------------------------------------------------------

  /** `alsoInTransaction` runs inside the account's transaction (accepting an invitation with it). */
  async register(
    input: { email: string; password: string; name?: string },
    meta: RequestMeta,
    alsoInTransaction?: (tx: Db, user: UserRow) => Promise<unknown>,
  ): Promise<{ user: UserRow; tokens: TokenPair }> {
    await this.#limit(LIMITS.registerIp, meta.ip, meta);
    const email = normalizeEmail(input.email);
    checkPasswordPolicy(input.password, email);
    if (await store.userByEmail(this.#o.db, email))
      throw conflict('An account with this email already exists');
    const passwordHash = await hashPassword(input.password);
    // The account, its verification token and its first session commit together, or not at all.
    const created = await this.#o.db.transaction(async (tx) => {
      const user = await store.insertUser(tx, {
        id: newId(),
        email,
        name: input.name ?? '',
        passwordHash,
        isSuperadmin: false,
      });
      const verification = await this.#mintUserToken(tx, user.id, 'verify_email', VERIFY_EMAIL_TTL);
      await alsoInTransaction?.(tx, user);
      return { user, verification, tokens: await this.#startSession(user, meta, tx) };
    });
    await this.#mailVerification(created.user.email, created.verification);
    return { user: created.user, tokens: created.tokens };
  }

  /** Creates (or promotes) a platform administrator; used by `mailroom create-admin`. */
  async createAdmin(input: { email: string; password: string; name?: string }): Promise<UserRow> {
    const email = normalizeEmail(input.email);
    checkPasswordPolicy(input.password, email);
    const passwordHash = await hashPassword(input.password);
    const existing = await store.userByEmail(this.#o.db, email);
    if (existing) {
      return (await store.updateUser(this.#o.db, existing.id, { passwordHash, isSuperadmin: true }))!;
    }
    return store.insertUser(this.#o.db, {
      id: newId(),
      email,
      name: input.name ?? 'Administrator',
      passwordHash,
      isSuperadmin: true,
      emailVerifiedAt: new Date(),
    });
  }

  async getUser(userId: string): Promise<UserRow> {
    const user = await store.userById(this.#o.db, userId);
    if (!user) throw notFound('User');
    return user;
  }

  async userByEmail(email: string): Promise<UserRow | undefined> {
    return store.userByEmail(this.#o.db, normalizeEmail(email));
  }

  async updateProfile(userId: string, changes: { name?: string }): Promise<UserRow> {
    const user = await store.updateUser(this.#o.db, userId, changes);
    if (!user) throw notFound('User');
    return user;
  }

  // ---- sessions ---------------------------------------------------------------------------------

  async login(input: { email: string; password: string }, meta: RequestMeta): Promise<LoginResult> {
    const email = normalizeEmail(input.email);
    await this.#limit(LIMITS.loginIp, meta.ip, meta);
    await this.#limit(LIMITS.loginAccount, email, meta);
    const user = await store.userByEmail(this.#o.db, email);
    if (!user) {
      await burnPasswordCheck(input.password);
      await this.#o.audit.securityEvent({
        kind: 'login_failed',
        meta,
        details: { email, reason: 'unknown_account' },
      });
      throw unauthorized('Wrong email or password');
    }
    if (!(await verifyPassword(user.passwordHash, input.password))) {
      await this.#o.audit.securityEvent({
        kind: 'login_failed',
        meta,
        userId: user.id,
        details: { reason: 'password' },
      });
      throw unauthorized('Wrong email or password');
    }
    if (user.mfaEnabledAt) {
      const mfaToken = await new SignJWT({ typ: 'mfa' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(`${MFA_TOKEN_TTL}s`)
        .sign(this.#o.secrets.jwtKey);
      return { mfa_required: true, mfa_token: mfaToken };
    }
    await this.#o.audit.securityEvent({ kind: 'login_succeeded', meta, userId: user.id });
    return this.#startSession(user, meta);
  }

  /** Second step of a login for an account with MFA: a TOTP code or a recovery code. */
  async completeMfaLogin(
    input: { mfa_token: string; code?: string; recovery_code?: string },
    meta: RequestMeta,
  ): Promise<TokenPair> {
    await this.#limit(LIMITS.mfaIp, meta.ip, meta);
    const userId = await this.#verifyJwt(input.mfa_token, 'mfa').catch(() => {
      throw unauthorized('The MFA token is invalid or expired; sign in again');
    });
    await this.#limit(LIMITS.mfaAccount, userId, meta);
    const user = await this.getUser(userId);
    const factor = await this.#checkSecondFactor(user, input, meta);
    await this.#o.audit.securityEvent({ kind: 'login_succeeded', meta, userId, details: { mfa: true } });
    // A TOTP code at login counts as the session's first step-up check; a recovery code does not.
    return this.#startSession(user, meta, this.#o.db, factor === 'totp' ? new Date() : null);
  }

  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    await this.#limit(LIMITS.refreshIp, meta.ip, meta);
    const outcome = await this.#o.db.transaction(async (tx) => {
      const token = await store.refreshTokenForUpdate(tx, sha256(refreshToken));
      if (!token) return { kind: 'invalid' as const };
      const session = await store.sessionById(tx, token.sessionId);
      if (!session || session.revokedAt || session.expiresAt <= new Date() || token.expiresAt <= new Date()) {
        return { kind: 'invalid' as const };
      }
      if (token.usedAt) {
        // A spent token came back: it was stolen or replayed. End the whole family.
        await store.revokeSession(tx, session.userId, session.id, 'refresh_token_reuse');
        return { kind: 'reuse' as const, session };
      }
      await store.spendRefreshToken(tx, token.id);
      await store.touchSession(tx, session.id);
      const user = await store.userById(tx, session.userId);
      if (!user) return { kind: 'invalid' as const };
      return { kind: 'ok' as const, tokens: await this.#issueTokens(tx, user, session) };
    });
    if (outcome.kind === 'reuse') {
      this.#sessionCache.delete(outcome.session.id);
      await this.#o.audit.securityEvent({
        kind: 'refresh_token_reuse',
        meta,
        userId: outcome.session.userId,
        details: { session_id: outcome.session.id },
      });
      throw unauthorized('Refresh token already used; the session has been revoked');
    }
    if (outcome.kind === 'invalid') throw unauthorized('Refresh token is invalid or expired');
    return outcome.tokens;
  }

  async logout(principal: UserPrincipal): Promise<void> {
    await store.revokeSession(this.#o.db, principal.userId, principal.sessionId, 'logout');
    this.#sessionCache.delete(principal.sessionId);
  }

  async listSessions(userId: string): Promise<SessionRow[]> {
    return store.listSessions(this.#o.db, userId);
  }

  async revokeSession(userId: string, sessionId: string): Promise<void> {
    if (!(await store.revokeSession(this.#o.db, userId, sessionId, 'revoked'))) throw notFound('Session');
    this.#sessionCache.delete(sessionId);
  }

  /** Verifies an access JWT and that its session is still live. */
  async authenticateAccessToken(token: string): Promise<UserPrincipal> {
    const now = Date.now();
    const payload = await this.#verifyAccessJwt(token, now);
    const cached = this.#sessionCache.get(payload.sid);
    if (cached && cached.until > now && cached.expiresAt > now) return cached.principal;
    const session = await store.sessionForAuth(this.#o.db, payload.sid);
    if (
      !session ||
      session.revokedAt ||
      session.expiresAt.getTime() <= now ||
      session.userId !== payload.sub
    ) {
      this.#sessionCache.delete(payload.sid);
      throw unauthorized('Session has ended; sign in again');
    }
    const principal: UserPrincipal = {
      kind: 'user',
      userId: session.userId,
      sessionId: payload.sid,
      isSuperadmin: session.isSuperadmin,
    };
    if (this.#sessionCache.size > 50_000) this.#sessionCache.clear();
    this.#sessionCache.set(payload.sid, {
      principal,
      until: now + SESSION_CACHE_MS,
      expiresAt: session.expiresAt.getTime(),
    });
    return principal;
  }

  async #verifyAccessJwt(token: string, now: number): Promise<{ sub: string; sid: string }> {
    const known = this.#verifiedTokens.get(token);
    if (known) {
      if (known.exp * 1000 > now) return known;
      this.#verifiedTokens.delete(token);
      throw unauthorized('Access token expired');
    }
    let payload: { sub?: string; sid?: unknown; typ?: unknown; exp?: number };
    try {
      ({ payload } = await jwtVerify(token, this.#o.secrets.jwtKey, {
        issuer: ISSUER,
        algorithms: ['HS256'],
      }));
    } catch (err) {
      throw unauthorized(
        err instanceof joseErrors.JWTExpired ? 'Access token expired' : 'Invalid access token',
      );
    }
    if (payload.typ !== 'access' || typeof payload.sid !== 'string' || !payload.sub || !payload.exp) {
      throw unauthorized('Invalid access token');
    }
    if (this.#verifiedTokens.size > 50_000) this.#verifiedTokens.clear();
    const claims = { sub: payload.sub, sid: payload.sid, exp: payload.exp };
    this.#verifiedTokens.set(token, claims);
    return claims;
  }

  async #startSession(
    user: UserRow,
    meta: RequestMeta,
    db: Db = this.#o.db,
    mfaVerifiedAt: Date | null = null,
  ): Promise<TokenPair> {
    return db.transaction(async (tx) => {
      const session = {
        id: newId(),
        userId: user.id,
        ip: meta.ip,
        userAgent: meta.userAgent ?? null,
        expiresAt: new Date(Date.now() + this.#o.refreshTokenTtl * 1000),
        mfaVerifiedAt,
      };
      await store.insertSession(tx, session);
      return this.#issueTokens(tx, user, session);
    });
  }

  async #issueTokens(db: Db, user: UserRow, session: { id: string; expiresAt: Date }): Promise<TokenPair> {
    const refresh = `mrr_${randomToken(32)}`;
    await store.insertRefreshToken(db, {
      id: newId(),
      sessionId: session.id,
      tokenHash: sha256(refresh),
      expiresAt: session.expiresAt,
    });
    const access = await new SignJWT({ typ: 'access', sid: session.id })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(`${this.#o.accessTokenTtl}s`)
      .sign(this.#o.secrets.jwtKey);
    return {
      access_token: access,
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: this.#o.accessTokenTtl,
      session_id: session.id,
    };
  }

  async #verifyJwt(token: string, typ: string): Promise<string> {
    const { payload } = await jwtVerify(token, this.#o.secrets.jwtKey, {
      issuer: ISSUER,
      algorithms: ['HS256'],
    });
    if ((payload as { typ?: string }).typ !== typ || !payload.sub) throw new Error('wrong token type');
    return payload.sub;
  }

  // ---- passwords and mailed tokens -------------------------------------------------------------

  async changePassword(
    principal: UserPrincipal,
    input: { current_password: string; new_password: string },
    meta: RequestMeta,
  ): Promise<void> {
    const user = await this.getUser(principal.userId);
    // A stolen access token must not become a password-guessing oracle.
    await this.#limit(LIMITS.loginAccount, user.email, meta);
    if (!(await verifyPassword(user.passwordHash, input.current_password))) {
      await this.#o.audit.securityEvent({
        kind: 'login_failed',
        meta,
        userId: user.id,
        details: { reason: 'change_password' },
      });
      throw forbidden('Current password is wrong');
    }
    checkPasswordPolicy(input.new_password, user.email);
    const passwordHash = await hashPassword(input.new_password);
    const revoked = await this.#o.db.transaction(async (tx) => {
      await store.updateUser(tx, user.id, { passwordHash });
      return store.revokeOtherSessions(tx, user.id, principal.sessionId, 'password_changed');
    });
    for (const id of revoked) this.#sessionCache.delete(id);
    await this.#o.audit.securityEvent({ kind: 'password_changed', meta, userId: user.id });
  }

  async sendEmailVerification(userId: string): Promise<void> {
    const user = await this.getUser(userId);
    if (user.emailVerifiedAt) throw conflict('Email is already verified');
    const token = await this.#mintUserToken(this.#o.db, user.id, 'verify_email', VERIFY_EMAIL_TTL);
    await this.#mailVerification(user.email, token);
  }

  async #mailVerification(to: string, token: string): Promise<void> {
    await this.#o.mailer.send({
      to,
      subject: 'Confirm your Mailroom email address',
      text: `Confirm this address by sending the token below to POST ${this.#o.publicUrl}/v1/auth/verify-email\n\ntoken: ${token}\n\nIt expires in 48 hours.`,
    });
  }

  async verifyEmail(token: string): Promise<UserRow> {
    const user = await this.#o.db.transaction(async (tx) => {
      const row = await store.consumeUserToken(tx, sha256(token), 'verify_email');
      return row ? store.updateUser(tx, row.userId, { emailVerifiedAt: new Date() }) : undefined;
    });
    if (!user) throw badRequest('The verification token is invalid, used or expired');
    return user;
  }

  /**
   * Always the same answer, in the same time: the lookup and the mail happen in a job, so neither the
   * reply nor its timing tells whether the account exists.
   */
  async requestPasswordReset(emailInput: string, meta: RequestMeta): Promise<void> {
    const email = normalizeEmail(emailInput);
    await this.#limit(LIMITS.resetIp, meta.ip, meta);
    await this.#limit(LIMITS.resetAccount, email, meta);
    await this.#o.jobs.send(PASSWORD_RESET_QUEUE, { email });
  }

  /** The job behind requestPasswordReset. */
  async mailPasswordReset(email: string): Promise<void> {
    const user = await store.userByEmail(this.#o.db, email);
    if (!user) return;
    const token = await this.#mintUserToken(this.#o.db, user.id, 'reset_password', RESET_PASSWORD_TTL);
    await this.#o.mailer.send({
      to: user.email,
      subject: 'Reset your Mailroom password',
      text: `Someone asked to reset your password. If it was you, send the token below with your new password to POST ${this.#o.publicUrl}/v1/auth/password-reset/confirm\n\ntoken: ${token}\n\nIt expires in one hour. If it was not you, ignore this message.`,
    });
  }

  async resetPassword(input: { token: string; new_password: string }, meta: RequestMeta): Promise<void> {
    await this.#limit(LIMITS.resetIp, meta.ip, meta);
    const reset = await this.#o.db.transaction(async (tx) => {
      const row = await store.consumeUserToken(tx, sha256(input.token), 'reset_password');
      if (!row) return null;
      const user = await store.userById(tx, row.userId);
      if (!user) return null;
      checkPasswordPolicy(input.new_password, user.email);
      // Proving control of the mailbox also verifies it.
      await store.updateUser(tx, user.id, {
        passwordHash: await hashPassword(input.new_password),
        emailVerifiedAt: user.emailVerifiedAt ?? new Date(),
      });
      const revoked = await store.revokeOtherSessions(tx, user.id, null, 'password_reset');
      return { id: user.id, revoked };
    });
    if (!reset) throw badRequest('The reset token is invalid, used or expired');
    for (const id of reset.revoked) this.#sessionCache.delete(id);
    const userId = reset.id;
    await this.#o.audit.securityEvent({ kind: 'password_reset', meta, userId });
  }

  async #mintUserToken(
    db: Db,
    userId: string,
    purpose: store.TokenPurpose,
    ttlSeconds: number,
  ): Promise<string> {
    const token = randomToken(32);
    await db.transaction(async (tx) => {
      await store.retireUserTokens(tx, userId, purpose);
      await store.insertUserToken(tx, {
        id: newId(),
        userId,
        purpose,
        tokenHash: sha256(token),
        expiresAt: new Date(Date.now() + ttlSeconds * 1000),
      });
    });
    return token;
  }

  // ---- MFA -------------------------------------------------------------------------------------

  async mfaSetup(userId: string): Promise<{ secret: string; otpauth_uri: string; qr_code: string }> {
    const user = await this.getUser(userId);
    if (user.mfaEnabledAt) throw conflict('MFA is already enabled; disable it first to enrol a new device');
    const secret = new Secret({ size: 20 });
    await store.updateUser(this.#o.db, user.id, { mfaPendingSecret: this.#o.secrets.encrypt(secret.base32) });
    const uri = totpFor(user.email, secret).toString();
    return {
      secret: secret.base32,
      otpauth_uri: uri,
      qr_code: await (await import('qrcode')).default.toDataURL(uri, { margin: 1, width: 256 }),
    };
  }

  /** Confirms set-up with a first code; returns the one-time recovery codes (shown once). */
  /** Needs the password too: a hijacked session must not be able to enrol the attacker's device. */
  async mfaEnable(
    userId: string,
    input: { code: string; password: string },
    meta: RequestMeta,
  ): Promise<string[]> {
    await this.#limit(LIMITS.mfaAccount, userId, meta);
    const user = await this.getUser(userId);
    if (user.mfaEnabledAt) throw conflict('MFA is already enabled');
    if (!user.mfaPendingSecret) throw badRequest('Start with POST /v1/auth/mfa/setup');
    await this.#confirmPassword(user, input.password, meta, 'enable');
    if (!(await this.#totpMatches(user, user.mfaPendingSecret, input.code))) {
      await this.#o.audit.securityEvent({ kind: 'mfa_failed', meta, userId, details: { during: 'enable' } });
      throw new AppError(422, 'invalid_code', 'The code is wrong or already used');
    }
    const codes = await this.#o.db.transaction(async (tx) => {
      await store.updateUser(tx, user.id, {
        mfaSecret: user.mfaPendingSecret,
        mfaPendingSecret: null,
        mfaEnabledAt: new Date(),
      });
      return this.#newRecoveryCodes(tx, user.id);
    });
    await this.#o.audit.securityEvent({ kind: 'mfa_enabled', meta, userId });
    return codes;
  }

  async mfaDisable(
    userId: string,
    input: { password: string; code?: string; recovery_code?: string },
    meta: RequestMeta,
  ) {
    await this.#limit(LIMITS.mfaAccount, userId, meta);
    const user = await this.getUser(userId);
    if (!user.mfaEnabledAt) throw conflict('MFA is not enabled');
    await this.#confirmPassword(user, input.password, meta, 'disable');
    await this.#checkSecondFactor(user, input, meta);
    await this.#o.db.transaction(async (tx) => {
      await store.updateUser(tx, user.id, {
        mfaSecret: null,
        mfaPendingSecret: null,
        mfaEnabledAt: null,
        mfaLastStep: null,
      });
      await store.replaceRecoveryCodes(tx, user.id, []);
    });
    await this.#o.audit.securityEvent({ kind: 'mfa_disabled', meta, userId });
  }

  async regenerateRecoveryCodes(userId: string, code: string, meta: RequestMeta): Promise<string[]> {
    await this.#limit(LIMITS.mfaAccount, userId, meta);
    const user = await this.getUser(userId);
    if (!user.mfaEnabledAt) throw conflict('MFA is not enabled');
    await this.#checkSecondFactor(user, { code }, meta);
    return this.#o.db.transaction((tx) => this.#newRecoveryCodes(tx, user.id));
  }

  /**
   * Step-up: a TOTP code from a signed-in user, recorded on the current session so that operations that
   * ask for a recent check (credential exports) accept it for a while. Same rate limits as a login's
   * second step; a wrong or replayed code is an MFA failure.
   */
  async verifyMfa(principal: UserPrincipal, code: string, meta: RequestMeta): Promise<Date> {
    await this.#limit(LIMITS.mfaIp, meta.ip, meta);
    await this.#limit(LIMITS.mfaAccount, principal.userId, meta);
    const user = await this.getUser(principal.userId);
    if (!user.mfaEnabledAt || !user.mfaSecret) throw conflict('MFA is not enabled on this account');
    if (!(await this.#totpMatches(user, user.mfaSecret, code))) {
      await this.#o.audit.securityEvent({
        kind: 'mfa_failed',
        meta,
        userId: user.id,
        details: { during: 'verify' },
      });
      throw new AppError(422, 'invalid_code', 'The code is wrong or already used');
    }
    const at = new Date();
    if (!(await store.markSessionMfaVerified(this.#o.db, user.id, principal.sessionId, at)))
      throw unauthorized('Session has ended; sign in again');
    return at;
  }

  /** Whether the user has MFA on, and when this session last passed a TOTP check (never cached). */
  async mfaState(principal: UserPrincipal): Promise<{ enabled: boolean; verifiedAt: Date | null }> {
    const row = await store.sessionMfaState(this.#o.db, principal.sessionId, principal.userId);
    if (!row) throw unauthorized('Session has ended; sign in again');
    return { enabled: row.mfaEnabledAt !== null, verifiedAt: row.mfaVerifiedAt };
  }

  /** MFA changes need the password as well as the session; a wrong one is an MFA failure. */
  async #confirmPassword(user: UserRow, password: string, meta: RequestMeta, during: string): Promise<void> {
    if (await verifyPassword(user.passwordHash, password)) return;
    await this.#o.audit.securityEvent({
      kind: 'mfa_failed',
      meta,
      userId: user.id,
      details: { during, reason: 'password' },
    });
    throw forbidden('Password is wrong');
  }

  /** Which second factor passed; throws 401 when none did. */
  async #checkSecondFactor(
    user: UserRow,
    input: { code?: string; recovery_code?: string },
    meta: RequestMeta,
  ): Promise<'totp' | 'recovery_code'> {
    if (!user.mfaSecret) throw conflict('MFA is not enabled');
    if (input.code) {
      if (await this.#totpMatches(user, user.mfaSecret, input.code)) return 'totp';
    } else if (input.recovery_code) {
      const hash = sha256(normalizeRecoveryCode(input.recovery_code));
      if (await store.useRecoveryCode(this.#o.db, user.id, hash)) {
        await this.#o.audit.securityEvent({ kind: 'recovery_code_used', meta, userId: user.id });
        return 'recovery_code';
      }
    } else {
      throw badRequest('Give either code or recovery_code', [{ field: 'body.code', message: 'is required' }]);
    }
    await this.#o.audit.securityEvent({ kind: 'mfa_failed', meta, userId: user.id });
    throw unauthorized('The code is wrong or already used');
  }

  /** Whether `code` is the user's current TOTP code, claiming its time step so it cannot be replayed. */
  async #totpMatches(user: UserRow, sealedSecret: string, code: string): Promise<boolean> {
    const step = matchTotp(user.email, Secret.fromBase32(this.#o.secrets.decrypt(sealedSecret)), code);
    return step !== null && (await store.claimTotpStep(this.#o.db, user.id, step));
  }

  async #newRecoveryCodes(db: Db, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
      const raw = randomToken(8)
        .replace(/[^A-Za-z0-9]/g, '')
        .toLowerCase()
        .padEnd(10, '0')
        .slice(0, 10);
      return `${raw.slice(0, 5)}-${raw.slice(5)}`;
    });
    await store.replaceRecoveryCodes(
      db,
      userId,
      codes.map((c) => ({ id: newId(), codeHash: sha256(normalizeRecoveryCode(c)) })),
    );
    return codes;
  }

  async #limit(limit: Limit, key: string, meta: RequestMeta): Promise<void> {
    const result = await this.#o.limiter.hit(limit, key);
    if (result.allowed) return;
    // One event per window, not one per refused request: a flood must not fill the table.
    if (result.firstRefusal) {
      await this.#o.audit.securityEvent({ kind: 'rate_limited', meta, details: { limit: limit.name } });
    }
    throw tooManyRequests(result.retryAfterSeconds);
  }
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function checkPasswordPolicy(password: string, email: string): void {
  const problems: string[] = [];
  if (password.length < 10) problems.push('must be at least 10 characters');
  if (password.length > 256) problems.push('must be at most 256 characters');
  if (password.toLowerCase() === email) problems.push('must not be your email address');
  if (problems.length) {
    throw new AppError(422, 'weak_password', `password ${problems.join(', ')}`, {
      errors: problems.map((message) => ({ field: 'body.password', message })),
    });
  }
}

function totpFor(email: string, secret: Secret): TOTP {
  return new TOTP({ issuer: 'Mailroom', label: email, algorithm: 'SHA1', digits: 6, period: 30, secret });
}

/** The time step a code belongs to (±1 step for clock drift), or null. */
function matchTotp(email: string, secret: Secret, code: string): number | null {
  const cleaned = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(cleaned)) return null;
  const delta = totpFor(email, secret).validate({ token: cleaned, window: 1 });
  if (delta === null) return null;
  return Math.floor(Date.now() / 30_000) + delta;
}

function normalizeRecoveryCode(code: string): string {
  return code
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}
