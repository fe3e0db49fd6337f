// The OAuth providers external mail accounts can use, by name, with their documented defaults.
import { googleOAuth } from './google.ts';
import { microsoftOAuth } from './microsoft.ts';
import type { OAuthEndpoints, OAuthProvider, OAuthProviderName } from './types.ts';

export const OAUTH_PROVIDERS: Readonly<Record<OAuthProviderName, OAuthProvider>> = Object.freeze({
  google: googleOAuth,
  microsoft: microsoftOAuth,
});

/** The scopes each provider's mail access needs, with what reveals the account's address. */
export const DEFAULT_SCOPES: Readonly<Record<OAuthProviderName, readonly string[]>> = Object.freeze({
  google: googleOAuth.defaultScopes,
  microsoft: microsoftOAuth.defaultScopes,
});

/** The providers' real endpoints; tests and single-tenant Microsoft apps replace them. */
export const DEFAULT_ENDPOINTS: Readonly<Record<OAuthProviderName, Readonly<OAuthEndpoints>>> = Object.freeze(
  {
    google: googleOAuth.defaultEndpoints,
    microsoft: microsoftOAuth.defaultEndpoints,
  },
);

export function isOAuthProviderName(name: string): name is OAuthProviderName {
  return Object.hasOwn(OAUTH_PROVIDERS, name);
}
