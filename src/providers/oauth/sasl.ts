// The SASL initial responses that carry an OAuth 2.0 access token to IMAP and SMTP servers: XOAUTH2
// (Google's and Microsoft's documented mechanism) and OAUTHBEARER (RFC 7628). Both are base64 of
// fields separated by ^A (0x01), so no field may contain one.

// RFC 6750 §2.1 b64token: what a bearer token may be made of.
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

function assertBearerToken(accessToken: string): void {
  // The token itself stays out of the message.
  if (!BEARER_TOKEN.test(accessToken)) throw new TypeError('the access token is not a valid bearer token');
}

function assertField(name: string, value: string): void {
  if (value === '' || /\p{Cc}/u.test(value))
    throw new TypeError(`the SASL ${name} is empty or has control characters`);
}

/** RFC 5801 saslname: `=` and `,` would end the GS2 header's field, so they are escaped. */
function saslName(user: string): string {
  return user.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/** The XOAUTH2 initial client response: base64("user=" user ^A "auth=Bearer " token ^A ^A). */
export function xoauth2(user: string, accessToken: string): string {
  assertField('user', user);
  assertBearerToken(accessToken);
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/**
 * The OAUTHBEARER initial client response (RFC 7628 §3.1): a GS2 header naming the user, then the
 * host and port the client connected to, then the bearer token.
 */
export function oauthbearer(user: string, accessToken: string, host: string, port: number): string {
  assertField('user', user);
  assertField('host', host);
  assertBearerToken(accessToken);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new TypeError('the SASL port is not a TCP port');
  const message = `n,a=${saslName(user)},\x01host=${host}\x01port=${port}\x01auth=Bearer ${accessToken}\x01\x01`;
  return Buffer.from(message, 'utf8').toString('base64');
}
