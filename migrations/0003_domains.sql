-- Domains, their DKIM keys, and the provider accounts (DNS hosts, registrars) that automate them.

create table provider_accounts (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  kind text not null check (kind in ('dns', 'registrar')),
  provider text not null check (provider in ('cloudflare', 'namecheap')),
  name text not null,
  credentials text not null,                -- JSON, AES-256-GCM under MAILROOM_SECRET_KEY
  hint text not null,                       -- the credential's last characters, to tell accounts apart
  created_by uuid,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index provider_accounts_org on provider_accounts (organization_id, id);

create table domains (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,                       -- lower case, punycode, no trailing dot
  unicode_name text not null,
  status text not null default 'pending' check (status in ('pending', 'verified', 'failed')),
  is_active boolean not null default true,
  verification_token text not null,
  ownership_verified boolean not null default false,
  mx_verified boolean not null default false,
  spf_verified boolean not null default false,
  dkim_verified boolean not null default false,
  dmarc_verified boolean not null default false,
  return_path_verified boolean not null default false,
  catch_all_target text,
  settings jsonb not null default '{}',
  dns_provider_account_id uuid references provider_accounts(id) on delete set null,
  dns_checks jsonb,                         -- the last verification's per-record report
  last_checked_at timestamptz,
  next_check_at timestamptz not null default now(),
  verified_at timestamptz,
  failed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name)
);
-- Several organisations may add a name, but only one can hold it: the one whose token verified.
create unique index domains_owner on domains (name) where ownership_verified;
create index domains_org_name on domains (organization_id, name);
create index domains_due on domains (next_check_at);

create table domain_dkim_keys (
  id uuid primary key,
  organization_id uuid not null,
  domain_id uuid not null references domains(id) on delete cascade,
  selector text not null,
  algorithm text not null check (algorithm in ('rsa', 'ed25519')),
  bits integer,
  public_key text not null,                 -- the DNS p= value
  private_key text not null,                -- PKCS#8 PEM, AES-256-GCM under MAILROOM_SECRET_KEY
  state text not null check (state in ('pending', 'active', 'retiring', 'retired')),
  created_at timestamptz not null default now(),
  activated_at timestamptz,
  retire_after timestamptz,
  retired_at timestamptz,
  unique (domain_id, selector)
);
create unique index domain_dkim_keys_signing on domain_dkim_keys (domain_id) where state = 'active';
