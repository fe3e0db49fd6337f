// How Mailroom reaches an external account's servers: the IMAP client's and the SMTP transport's
// options, built one way for the connection test, the sync, the API's changes and sending.
import type { ImapFlowOptions } from 'imapflow';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';

export type Security = 'tls' | 'starttls' | 'none';

export interface ServerSettings {
  host: string;
  port: number;
  security: Security;
  /** False accepts any certificate (a self-hosted server with its own); true checks it as clients do. */
  verifyTls: boolean;
}

/** A password, or an OAuth access token (SASL XOAUTH2). */
export type Credentials = { username: string; password: string } | { username: string; accessToken: string };

/** Connecting (name, TCP, TLS) and the greeting each get this long. */
export const CONNECT_TIMEOUT_MS = 10_000;

export function imapOptions(server: ServerSettings, credentials: Credentials): ImapFlowOptions {
  return {
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    doSTARTTLS: server.security === 'starttls' ? true : server.security === 'none' ? false : undefined,
    tls: { rejectUnauthorized: server.verifyTls },
    auth:
      'password' in credentials
        ? { user: credentials.username, pass: credentials.password }
        : { user: credentials.username, accessToken: credentials.accessToken },
    logger: false,
    connectionTimeout: CONNECT_TIMEOUT_MS,
    greetingTimeout: CONNECT_TIMEOUT_MS,
  };
}

export function smtpOptions(server: ServerSettings, credentials: Credentials): SMTPTransport.Options {
  return {
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    requireTLS: server.security === 'starttls',
    ignoreTLS: server.security === 'none',
    tls: { rejectUnauthorized: server.verifyTls },
    auth:
      'password' in credentials
        ? { user: credentials.username, pass: credentials.password }
        : { type: 'OAuth2', user: credentials.username, accessToken: credentials.accessToken },
    connectionTimeout: CONNECT_TIMEOUT_MS,
    greetingTimeout: CONNECT_TIMEOUT_MS,
  };
}
