-- Exports (issue 15): the last TOTP check of a session, which credential exports ask to be recent
-- (step-up), and what an audit entry knows beyond its action (an export's row count and layout).

-- set by POST /v1/auth/mfa/verify and by a login completed with a second factor; null: never checked
alter table sessions add column mfa_verified_at timestamptz;

-- e.g. {"rows": 10000, "preset": "smartlead", "completed": true}; never a secret
alter table audit_log add column details jsonb;
