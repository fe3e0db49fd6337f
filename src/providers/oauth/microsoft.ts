// Microsoft 365 and Outlook.com over the Microsoft identity platform's v2.0 endpoints, for IMAP and
// SMTP AUTH with XOAUTH2 (learn.microsoft.com/exchange/client-developer/legacy-protocols/
// how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth).
import { addressOrNull, defineOAuthProvider } from './client.ts';

export const microsoftOAuth = defineOAuthProvider({
  name: 'microsoft',
  label: 'Microsoft',
  // `common` lets both work or school and personal accounts sign in; a single-tenant app replaces it
  // with its tenant ID.
  endpoints: {
    authorizeUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
  },
  // offline_access brings the refresh token; `email` asks for the email claim, and `profile` for
  // preferred_username, which Microsoft documents as requiring it, for accounts without an email claim.
  scopes: [
    'https://outlook.office.com/IMAP.AccessAsUser.All',
    'https://outlook.office.com/SMTP.Send',
    'offline_access',
    'openid',
    'email',
    'profile',
  ],
  // The code comes back in the query string, where the callback route reads it.
  authorizationParams: { response_mode: 'query' },
  emailFromClaims(claims) {
    // preferred_username is usually the sign-in address but may be a phone number: only an address counts.
    return addressOrNull(claims.email) ?? addressOrNull(claims.preferred_username);
  },
});
