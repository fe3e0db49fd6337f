// Google (Gmail and Google Workspace) over OAuth 2.0 for IMAP, POP and SMTP with XOAUTH2
// (developers.google.com/identity/protocols/oauth2/web-server, developers.google.com/gmail/imap/xoauth2-protocol).
import { addressOrNull, defineOAuthProvider } from './client.ts';

export const googleOAuth = defineOAuthProvider({
  name: 'google',
  label: 'Google',
  endpoints: {
    authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    userinfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
  },
  // The one scope Gmail's IMAP and SMTP accept; `openid email` put the address in the id_token.
  scopes: ['https://mail.google.com/', 'openid', 'email'],
  // Google issues a refresh token only for offline access, and again after the first grant only when
  // the user is asked to consent: without prompt=consent a reconnected account would get none.
  authorizationParams: { access_type: 'offline', prompt: 'consent' },
  emailFromClaims(claims) {
    // Google sends email_verified as a boolean, older tokens as a string.
    if (claims.email_verified === false || claims.email_verified === 'false') return null;
    return addressOrNull(claims.email);
  },
});
