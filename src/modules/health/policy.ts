// An organisation's auto-repair policy, and what it asks for a freshly computed score.
import type { HealthPolicyRow } from './tables.ts';

export interface HealthPolicy {
  /** Auto-repair at all (scores and findings are computed either way). */
  enabled: boolean;
  /** Below this score a sender is paused: its mail is held, not sent and not dropped. */
  pause_below: number;
  /** Below this score its warmup is slowed (the warmup module sends half its ramp). */
  slow_warmup_below: number;
  /** A pause the policy made is lifted once the score is back at `resume_at` (off: a person resumes). */
  auto_resume: boolean;
  resume_at: number;
  /** Records that drifted are published again through the domain's DNS provider account. */
  republish_dns: boolean;
  /** Owners and admins get an email for every automatic action. */
  notify_email: boolean;
}

export const DEFAULT_POLICY: HealthPolicy = {
  enabled: true,
  pause_below: 75,
  slow_warmup_below: 75,
  auto_resume: false,
  resume_at: 90,
  republish_dns: true,
  notify_email: true,
};

export function policyOfRow(row: HealthPolicyRow | null): HealthPolicy & { updated_at: Date | null } {
  if (!row) return { ...DEFAULT_POLICY, updated_at: null };
  return {
    enabled: row.enabled,
    pause_below: row.pauseBelow,
    slow_warmup_below: row.slowWarmupBelow,
    auto_resume: row.autoResume,
    resume_at: row.resumeAt,
    republish_dns: row.republishDns,
    notify_email: row.notifyEmail,
    updated_at: row.updatedAt,
  };
}
