import { and, desc, eq, isNull, sql } from '../../core/orm.ts';
import type { Db } from '../../core/db.ts';
import { mfaRecoveryCodes, refreshTokens, sessions, type UserRow, users, userTokens } from './tables.ts';

export type NewUser = typeof users.$inferInsert;
export type TokenPurpose = 'verify_email' | 'reset_password';

export async function insertUser(db: Db, user: NewUser): Promise<UserRow> {
  const [row] = await db.insert(users).values(user).returning();
  return row;
}

export async function userByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.email, email));
  return row;
}

export async function userById(db: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row;
}

export async function updateUser(
  db: Db,
  id: string,
  changes: Partial<NewUser>,
): Promise<UserRow | undefined> {
  const [row] = await db
    .update(users)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(users.id, id))
    .returning();
  return row;
}

/** Accepts a TOTP step only if it is newer than the last one accepted (atomic, so a code works once). */
export async function claimTotpStep(db: Db, userId: string, step: number): Promise<boolean> {
  const rows = await db
    .update(users)
    .set({ mfaLastStep: step })
    .where(and(eq(users.id, userId), sql`coalesce(${users.mfaLastStep}, -1) < ${step}`))
    .returning({ id: users.id });
  return rows.length === 1;
}

export async function replaceRecoveryCodes(
  db: Db,
  userId: string,
  codes: { id: string; codeHash: string }[],
) {
  await db.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId));
  if (codes.length) await db.insert(mfaRecoveryCodes).values(codes.map((c) => ({ ...c, userId })));
}

export async function useRecoveryCode(db: Db, userId: string, codeHash: string): Promise<boolean> {
  const rows = await db
    .update(mfaRecoveryCodes)
    .set({ usedAt: new Date() })
    .where(
      and(
        eq(mfaRecoveryCodes.userId, userId),
        eq(mfaRecoveryCodes.codeHash, codeHash),
        isNull(mfaRecoveryCodes.usedAt),
      ),
    )
    .returning({ id: mfaRecoveryCodes.id });
  return rows.length === 1;
}

export async function insertSession(db: Db, session: typeof sessions.$inferInsert) {
  await db.insert(sessions).values(session);
}

export async function sessionById(db: Db, id: string) {
  const [row] = await db.select().from(sessions).where(eq(sessions.id, id));
  return row;
}

/** The session joined with what an access check needs about its user. */
export async function sessionForAuth(db: Db, id: string) {
  const [row] = await db
    .select({
      userId: sessions.userId,
      expiresAt: sessions.expiresAt,
      revokedAt: sessions.revokedAt,
      isSuperadmin: users.isSuperadmin,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, id));
  return row;
}

/** Whether the session's user has MFA on, and when the session last passed a TOTP check. */
export async function sessionMfaState(db: Db, sessionId: string, userId: string) {
  const [row] = await db
    .select({ mfaEnabledAt: users.mfaEnabledAt, mfaVerifiedAt: sessions.mfaVerifiedAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)));
  return row;
}

/** Records a passed TOTP check on the user's live session; false when there is no such session. */
export async function markSessionMfaVerified(
  db: Db,
  userId: string,
  sessionId: string,
  at: Date,
): Promise<boolean> {
  const rows = await db
    .update(sessions)
    .set({ mfaVerifiedAt: at })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
    .returning({ id: sessions.id });
  return rows.length === 1;
}

export async function listSessions(db: Db, userId: string) {
  return db
    .select()
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > now()`))
    .orderBy(desc(sessions.lastUsedAt));
}

export async function revokeSession(
  db: Db,
  userId: string,
  sessionId: string,
  reason: string,
): Promise<boolean> {
  const rows = await db
    .update(sessions)
    .set({ revokedAt: new Date(), revokedReason: reason })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
    .returning({ id: sessions.id });
  return rows.length === 1;
}

/** Revokes every live session of the user except `keep`; returns the ids revoked. */
export async function revokeOtherSessions(db: Db, userId: string, keep: string | null, reason: string) {
  const rows = await db
    .update(sessions)
    .set({ revokedAt: new Date(), revokedReason: reason })
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.revokedAt),
        keep ? sql`${sessions.id} <> ${keep}` : undefined,
      ),
    )
    .returning({ id: sessions.id });
  return rows.map((r) => r.id);
}

export async function touchSession(db: Db, id: string) {
  await db.update(sessions).set({ lastUsedAt: new Date() }).where(eq(sessions.id, id));
}

export async function insertRefreshToken(db: Db, token: typeof refreshTokens.$inferInsert) {
  await db.insert(refreshTokens).values(token);
}

/** Locks the token row for the rest of the transaction, so two refreshes cannot both spend it. */
export async function refreshTokenForUpdate(db: Db, tokenHash: string) {
  const [row] = await db
    .select()
    .from(refreshTokens)
    .where(eq(refreshTokens.tokenHash, tokenHash))
    .for('update');
  return row;
}

export async function spendRefreshToken(db: Db, id: string) {
  await db.update(refreshTokens).set({ usedAt: new Date() }).where(eq(refreshTokens.id, id));
}

export async function insertUserToken(db: Db, token: typeof userTokens.$inferInsert) {
  await db.insert(userTokens).values(token);
}

/** Marks a live token used and returns it; undefined when unknown, spent or expired. */
export async function consumeUserToken(db: Db, tokenHash: string, purpose: TokenPurpose) {
  const [row] = await db
    .update(userTokens)
    .set({ usedAt: new Date() })
    .where(
      and(
        eq(userTokens.tokenHash, tokenHash),
        eq(userTokens.purpose, purpose),
        isNull(userTokens.usedAt),
        sql`${userTokens.expiresAt} > now()`,
      ),
    )
    .returning();
  return row;
}

/** A new token of a purpose retires the user's older ones. */
export async function retireUserTokens(db: Db, userId: string, purpose: TokenPurpose) {
  await db
    .update(userTokens)
    .set({ usedAt: new Date() })
    .where(and(eq(userTokens.userId, userId), eq(userTokens.purpose, purpose), isNull(userTokens.usedAt)));
}

/** Removes sessions, refresh tokens and mailed tokens that expired more than `graceDays` ago. */
export async function deleteExpired(db: Db, graceDays: number): Promise<number> {
  const cutoff = sql`now() - make_interval(days => ${graceDays})`;
  const gone = await db
    .delete(sessions)
    .where(sql`${sessions.expiresAt} < ${cutoff}`)
    .returning({ id: sessions.id });
  const tokens = await db
    .delete(userTokens)
    .where(sql`${userTokens.expiresAt} < ${cutoff}`)
    .returning({ id: userTokens.id });
  return gone.length + tokens.length;
}
