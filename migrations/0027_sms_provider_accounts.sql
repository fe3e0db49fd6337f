-- SMS gateways as provider accounts (issue 20): the kind 'sms' and its three providers. The check
-- constraints of 0003 list the kinds and providers, so both are replaced.
alter table provider_accounts drop constraint provider_accounts_kind_check;
alter table provider_accounts add constraint provider_accounts_kind_check
  check (kind in ('dns', 'registrar', 'sms'));
alter table provider_accounts drop constraint provider_accounts_provider_check;
alter table provider_accounts add constraint provider_accounts_provider_check
  check (provider in ('cloudflare', 'namecheap', 'android-sms-gateway', 'twilio', 'smpp'));
