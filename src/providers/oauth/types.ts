// OAuth 2.0 for external mail accounts: the authorization code flow with PKCE against Google or
// Microsoft, whose access tokens log in to the account's IMAP and SMTP servers with SASL XOAUTH2.

export type OAuthProviderName = 'google' | 'microsoft';

export interface OAuthEndpoints {
  authorizeUrl: string;
  tokenUrl: string;
  /** where the user's address comes from after the exchange */
  userinfoUrl?: string;
}

export interface OAuthClientConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  endpoints: OAuthEndpoints;
  scopes: readonly string[];
}

export interface TokenSet {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: Date;
  scope: string | null;
  idToken?: string | null;
}

/** What the code exchange gives: the tokens and the address of the account they are for. */
export type ExchangedTokens = TokenSet & { email: string | null };

export interface AuthorizationRequest {
  /** Where to send the user's browser. */
  url: string;
  /** To compare with the `state` the callback receives (it ties the callback to this request). */
  state: string;
  /** To keep server-side until the callback, then pass to exchangeCode. */
  codeVerifier: string;
}

export interface AuthorizationOptions {
  /** The address the user is expected to sign in with; the provider pre-fills it. */
  loginHint?: string;
  /** More query parameters (e.g. `prompt: 'select_account'`); they cannot replace the flow's own. */
  extra?: Record<string, string>;
}

export interface OAuthRequestOptions {
  /** Per request; 15 s unless set. */
  timeoutMs?: number;
  /** Milliseconds since the epoch, for expiresAt; Date.now unless set. */
  now?: () => number;
}

/** One OAuth provider, with its differences (parameters, where the address is read) built in. */
export interface OAuthProvider {
  readonly name: OAuthProviderName;
  /** The provider's name as messages show it. */
  readonly label: string;
  readonly defaultEndpoints: Readonly<OAuthEndpoints>;
  readonly defaultScopes: readonly string[];
  authorizationRequest(config: OAuthClientConfig, options?: AuthorizationOptions): AuthorizationRequest;
  exchangeCode(
    config: OAuthClientConfig,
    code: string,
    codeVerifier: string,
    options?: OAuthRequestOptions,
  ): Promise<ExchangedTokens>;
  refresh(config: OAuthClientConfig, refreshToken: string, options?: OAuthRequestOptions): Promise<TokenSet>;
}
