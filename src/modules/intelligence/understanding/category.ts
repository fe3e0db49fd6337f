// Which tab a message belongs in, as mail clients sort them:
//   primary     a person writing to you (or your team), including work mail that mentions invoices or orders
//   social      notifications from social networks and people-network services
//   promotions  marketing: offers, sales, newsletters that sell, event and upgrade pitches
//   updates     transactional and automated mail about your accounts: receipts, shipping, bills, security
//               alerts, reminders, verification codes, monitoring, policy changes
//   forums      group discussion: mailing lists, discussion boards, group digests, Q&A threads
// Header and sender rules (the strongest evidence, written from how these senders are known to send) are
// added, in log-odds, to a small naive Bayes model over the words, trained at start-up on the examples
// below. An organisation's own categories, trained by example, win when they are confident enough.
import { getDomain } from 'tldts';
import type { AnalysisInput } from '../input.ts';
import {
  compilePhraseGroups,
  isContentWord,
  matchPhraseGroups,
  stopwordsFor,
  tokenizeSegments,
} from './keywords.ts';
import { bodyOf } from './text.ts';

export const BUILT_IN_CATEGORIES = ['primary', 'social', 'promotions', 'updates', 'forums'] as const;
export type BuiltInCategory = (typeof BUILT_IN_CATEGORIES)[number];

export interface CategoryResult {
  category: BuiltInCategory | string;
  /** Probability of the chosen category under the combined evidence, 0..1. */
  confidence: number;
  /** Why: the rules that fired and what the text model said. */
  reasons: string[];
}

/** Naive Bayes counts for one class; plain JSON so a model can be stored in a table and reloaded. */
export interface NaiveBayesClass {
  name: string;
  documents: number;
  /** Feature occurrences in the class's training documents. */
  total: number;
  counts: Record<string, number>;
}

export interface CustomCategoryModel {
  version: 1;
  /** A custom category is chosen over the built-in one when its probability reaches this. */
  threshold: number;
  classes: NaiveBayesClass[];
  /** Distinct features seen in training, for Laplace smoothing. */
  vocabulary: number;
}

// ---------------------------------------------------------------------------------------------------------
// Naive Bayes

/** The implicit class of custom models: ordinary mail that belongs to none of the organisation's categories. */
const BACKGROUND = '(other)';
const SMOOTHING = 1;
/** Known words up to which the text model's log-likelihood counts in full. */
const EVIDENCE_WORDS = 8;
/** Features a message contributes at most: the start of a message says what it is. */
const MAX_FEATURES = 160;

interface Posterior {
  name: string;
  probability: number;
}

function addDocument(target: Map<string, Map<string, number>>, name: string, features: string[]): void {
  let counts = target.get(name);
  if (!counts) {
    counts = new Map();
    target.set(name, counts);
  }
  for (const feature of features) counts.set(feature, (counts.get(feature) ?? 0) + 1);
}

function buildClasses(documents: Array<{ name: string; features: string[] }>): {
  classes: NaiveBayesClass[];
  vocabulary: number;
} {
  const counts = new Map<string, Map<string, number>>();
  const documentCounts = new Map<string, number>();
  const vocabulary = new Set<string>();
  for (const { name, features } of documents) {
    addDocument(counts, name, features);
    documentCounts.set(name, (documentCounts.get(name) ?? 0) + 1);
    for (const feature of features) vocabulary.add(feature);
  }
  const classes = [...counts].map(([name, map]) => {
    let total = 0;
    for (const n of map.values()) total += n;
    return { name, documents: documentCounts.get(name)!, total, counts: Object.fromEntries(map) };
  });
  return { classes, vocabulary: vocabulary.size };
}

/** A trained model as lookup tables: per feature, its log-probability in each class. */
interface ScoringTable {
  names: string[];
  logProbability: Map<string, Float64Array>;
}

function scoringTable(classes: NaiveBayesClass[], vocabulary: number): ScoringTable {
  const names = classes.map((c) => c.name);
  const denominators = classes.map((c) => Math.log(c.total + SMOOTHING * vocabulary));
  const logProbability = new Map<string, Float64Array>();
  classes.forEach((c, index) => {
    for (const feature of Object.keys(c.counts)) {
      let row = logProbability.get(feature);
      if (!row) {
        row = new Float64Array(classes.length);
        for (let k = 0; k < classes.length; k++) row[k] = Math.log(SMOOTHING) - denominators[k]!;
        logProbability.set(feature, row);
      }
      row[index] = Math.log(c.counts[feature]! + SMOOTHING) - denominators[index]!;
    }
  });
  return { names, logProbability };
}

// Custom models arrive as JSON; their tables are built once per model object.
const customTables = new WeakMap<CustomCategoryModel, ScoringTable>();

/**
 * Class probabilities for a feature list. Features no class has seen are skipped (under smoothing they
 * would only favour the smallest class), and the log-likelihood is tempered by the number of known features.
 */
function posteriors(
  table: ScoringTable,
  features: string[],
  priors: Record<string, number>,
): { ranked: Posterior[]; known: number } {
  const sums = new Float64Array(table.names.length);
  let known = 0;
  for (const feature of features) {
    const row = table.logProbability.get(feature);
    if (row === undefined) continue;
    known++;
    for (let k = 0; k < sums.length; k++) sums[k]! += row[k]!;
  }
  // Past EVIDENCE_WORDS known words the model's say grows only with the square root, so a long message
  // does not make the model certain of anything.
  const temperature = 1 / Math.sqrt(Math.max(1, known / EVIDENCE_WORDS));
  const logits = table.names.map((name, k) => ({
    name,
    logit: Math.log(priors[name] ?? 1 / table.names.length) + temperature * sums[k]!,
  }));
  return { ranked: softmax(logits), known };
}

function softmax(logits: Array<{ name: string; logit: number }>): Posterior[] {
  const max = Math.max(...logits.map((l) => l.logit));
  const exps = logits.map((l) => ({ name: l.name, value: Math.exp(l.logit - max) }));
  const sum = exps.reduce((s, e) => s + e.value, 0);
  return exps
    .map((e) => ({ name: e.name, probability: e.value / sum }))
    .sort((a, b) => b.probability - a.probability);
}

// ---------------------------------------------------------------------------------------------------------
// Features

function header(input: AnalysisInput, name: string): string | undefined {
  return input.headers.find((h) => h.name === name)?.value;
}

const senderDomains = new WeakMap<AnalysisInput, string>();

/** The sender's registrable domain ("mail.instagram.com" is instagram.com). */
function senderDomain(input: AnalysisInput): string {
  let domain = senderDomains.get(input);
  if (domain === undefined) {
    const host = input.from?.address.split('@')[1] ?? '';
    domain = getDomain(host) ?? host;
    senderDomains.set(input, domain);
  }
  return domain;
}

const ALL_STOPWORDS = stopwordsFor('');

function wordFeatures(text: string): string[] {
  const words: string[] = [];
  for (const segment of tokenizeSegments(text)) {
    for (const word of segment) {
      if (!isContentWord(word, ALL_STOPWORDS)) continue;
      words.push(word);
      if (words.length >= MAX_FEATURES) return words;
    }
  }
  return words;
}

/** The subject and the new text: what keywords, the text model and the wording rules all read. */
export function subjectAndBody(input: AnalysisInput): string {
  return `${input.subject}\n${bodyOf(input).text}`;
}

/** The words the text model reads: the subject, then the start of the new text. */
function messageWords(input: AnalysisInput): string[] {
  return wordFeatures(subjectAndBody(input));
}

/** Custom models also learn who sends a category and through which list: often the best evidence. */
function customFeatures(input: AnalysisInput): string[] {
  const features = [...messageWords(input)];
  const sender = input.from?.address;
  if (sender) {
    const domain = senderDomain(input);
    features.push(`from:${sender}`, `domain:${domain}`, `domain:${domain}`);
  }
  const listId = header(input, 'list-id');
  if (listId) features.push(`list:${/<([^>]+)>/.exec(listId)?.[1] ?? listId}`.toLowerCase());
  return features;
}

// ---------------------------------------------------------------------------------------------------------
// The built-in text model, trained on these examples at start-up (a few milliseconds).

const TRAINING: Record<BuiltInCategory, string[]> = {
  primary: [
    'Can we move our call to tomorrow afternoon? Something came up this morning.',
    'I had a look at your draft and left a few comments. Overall it reads well.',
    'Are you around this weekend? We were thinking of a barbecue at ours.',
    'Could you send me the spreadsheet you mentioned in the meeting?',
    'Sorry I missed your call, I was in the car. Ring me back when you can.',
    'Following up on our conversation yesterday, here are my thoughts on the plan.',
    'Would you be able to review the contract before I send it to the client?',
    'Thanks for lunch today, it was great to catch up. Say hi to the kids.',
    'I think we should hire the second candidate, she was much stronger on design.',
    'Let me know what time works for you and I will book a room.',
    'My flight lands at six, could you pick me up from the airport?',
    'Happy birthday! Hope you have a lovely day, let us celebrate soon.',
    'I am writing to ask whether you could help with the proposal for our client.',
    'Just checking whether you received the documents I sent last week.',
    'Our team would like to discuss a partnership, are you free for a call next week?',
    'Hast du morgen Zeit für ein kurzes Gespräch über das Angebot?',
    'Est-ce que tu pourrais relire le document avant notre réunion de jeudi ?',
    '¿Podemos vernos el lunes para revisar el presupuesto del proyecto?',
    'Would you like to come round for coffee on Sunday? I can show you the garden.',
    'I will be in town on Wednesday, are you free to meet for an hour?',
    'Quick question about the slides: should I keep the chart on page four?',
    'Can you walk me through the new process when you have a minute?',
    'I left the keys with your neighbour, pick them up whenever suits you.',
    'Great to see you yesterday. Here are the notes I promised.',
  ],
  social: [
    'liked your photo and commented: beautiful view',
    'has invited you to connect. Accept the invitation to grow your professional network.',
    'started following you. See their profile and follow back.',
    'tagged you in a post. See the post and reply to friends.',
    'You have a new friend request. Confirm the request to see their updates.',
    'mentioned you in a comment. Join the conversation.',
    'shared a memory with you from five years ago',
    'replied to your post. View the conversation and like the reply.',
    'People you may know: find friends and connections from your contacts.',
    'is celebrating a birthday today. Send your wishes on their timeline.',
    'your post is getting attention: 25 likes and 4 shares',
    'viewed your profile this week. See who viewed your profile.',
    'reacted to your story. Reply to their reaction.',
    'new followers and new likes on your video. Check your notifications.',
    'endorsed you for project management. Endorse your connections back.',
    'joined the group and posted: welcome new members',
    'sent you a message on the app. Open the app to reply to your friend.',
    'See what your friends have been sharing and posting this week.',
    'You have new notifications and a new follower on your profile.',
    'commented on a photo you were tagged in.',
    'Your friend is going to an event near you. See who else is going.',
  ],
  promotions: [
    'Save 25% on everything this weekend only. Shop now before the sale ends.',
    'Limited time offer: buy one get one free on selected items.',
    'Exclusive deal for subscribers: free shipping on all orders plus a bonus gift.',
    'Our summer collection is here. Discover new arrivals and best sellers.',
    'Use promo code at checkout to get an extra discount on your order.',
    'Last chance! Prices go up at midnight, grab your tickets now.',
    'Upgrade your plan today and get two months free.',
    'Introducing our newest product, order now and save.',
    'Members get early access to our biggest sale of the season.',
    'Treat yourself: special offers on gifts for every budget.',
    'Register now for our free webinar and learn tips from experts.',
    'Book your holiday today with our lowest fares and hotel deals.',
    'Clearance event: up to half price while stocks last.',
    'Join our loyalty programme and earn points on every purchase.',
    'Jetzt zugreifen: Rabatt auf das ganze Sortiment, nur für kurze Zeit.',
    'Profitez de nos offres exclusives et de la livraison gratuite.',
    'Aprovecha nuestras ofertas con descuento solo esta semana.',
    'Our newsletter: the best deals of the month and a gift for loyal customers.',
    'Hurry, the offer ends soon. Buy two and get the third one free.',
    'Try our premium plan free for thirty days.',
    'Discover the collection everyone is talking about and save on your first order.',
  ],
  updates: [
    'Your order has shipped and is on its way. Track your package.',
    'Receipt for your payment. Amount charged to your card.',
    'Your monthly statement is now available in online banking.',
    'A new sign-in to your account was detected. If this was not you, secure your account.',
    'Use this verification code to finish signing in. It expires in ten minutes.',
    'Reset your password by following the link. If you did not request this, ignore this email.',
    'Your invoice is ready to view and will be charged automatically.',
    'Reminder: your appointment is scheduled for next week.',
    'Your subscription will renew automatically. Manage billing in your account settings.',
    'We have updated our privacy policy and terms of service.',
    'Your parcel was delivered today and left with a neighbour.',
    'Your booking is confirmed. Check in online for your flight.',
    'Alert: the service is down and the incident is being investigated.',
    'The build failed on the main branch. See the logs for details.',
    'Your payment was received, thank you. Transaction details below.',
    'Your account balance is low. Please add funds to avoid interruption.',
    'Ihre Bestellung wurde versandt. Sendungsverfolgung online.',
    'Votre facture est disponible dans votre espace client.',
    'Your password was changed. If you did not make this change, contact support.',
    'Your delivery is scheduled for tomorrow between 9 and 12.',
    'Your account statement and receipt for this month are attached.',
    'Your ticket has been updated. Reply to this email to add a comment.',
  ],
  forums: [
    'Re: question about configuring the server, has anyone seen this error before?',
    'New reply in the thread you are watching. Visit the topic to respond.',
    'Digest of today’s topics from the group: five new messages in three topics.',
    'You received this message because you are subscribed to the group. To unsubscribe from this group send an email.',
    'mailing list: post to the list, list information and archives.',
    'I had the same problem after upgrading, the workaround on the wiki fixed it for me.',
    'Please keep the discussion on the list so others can benefit from the answers.',
    'Patch v3: fixes the review comments from the previous version.',
    'Summary of popular topics and new posts in the community since your last visit.',
    'Announcing the next meetup of the users group, discussion welcome on the list.',
    'Has anybody tried this library with the latest release? Any pitfalls?',
    'Moderators note: this thread is now locked, see the follow-up discussion.',
    'New answers were posted to your question in the forum.',
    'Call for comments on the proposal, reply to the list by Friday.',
    'Bonjour à tous, quelqu’un a-t-il déjà rencontré ce problème sur la liste ?',
    'Thanks everyone for the replies in this thread, the suggested config worked.',
    'Weekly digest: the most active discussions in your groups.',
    'A member posted in the group you follow: looking for advice on backups.',
    'Reply to the list, not to me, so the answer is archived for others.',
  ],
};

const builtIn = buildClasses(
  BUILT_IN_CATEGORIES.flatMap((name) =>
    TRAINING[name].map((text) => ({ name, features: wordFeatures(text) })),
  ),
);
const builtInTable = scoringTable(builtIn.classes, builtIn.vocabulary);
const UNIFORM_PRIORS: Record<string, number> = Object.fromEntries(
  BUILT_IN_CATEGORIES.map((c) => [c, 1 / BUILT_IN_CATEGORIES.length]),
);

// ---------------------------------------------------------------------------------------------------------
// Header and sender rules: weights in log-odds, added to the text model's log-probabilities.

type Weights = Partial<Record<BuiltInCategory, number>>;

const SOCIAL_DOMAINS = new Set([
  'facebook.com',
  'facebookmail.com',
  'instagram.com',
  'linkedin.com',
  'twitter.com',
  'x.com',
  'tiktok.com',
  'pinterest.com',
  'reddit.com',
  'redditmail.com',
  'snapchat.com',
  'tumblr.com',
  'quora.com',
  'meetup.com',
  'nextdoor.com',
  'xing.com',
  'strava.com',
  'discord.com',
  'youtube.com',
  'whatsapp.com',
  'threads.net',
  'bsky.app',
  'mastodon.social',
  'vk.com',
  'goodreads.com',
  'flickr.com',
  'twitch.tv',
  'telegram.org',
]);
const FREE_MAIL_DOMAINS = new Set([
  'gmail.com',
  'googlemail.com',
  'yahoo.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'icloud.com',
  'me.com',
  'aol.com',
  'protonmail.com',
  'proton.me',
  'gmx.de',
  'gmx.net',
  'web.de',
  'mail.ru',
  'yandex.ru',
  'btinternet.com',
  'free.fr',
  'orange.fr',
  'laposte.net',
  'libero.it',
  'qq.com',
]);
const NO_REPLY_LOCAL =
  /^(?:no-?reply|do-?not-?reply|donotreply|mailer-daemon|bounce|automated|auto|system)\b/;
const NOTIFICATION_LOCAL = /^(?:notifications?|notify|alerts?|updates?|digest)\b/;
const MARKETING_LOCAL =
  /^(?:deals?|offers?|promo(?:tions?)?|newsletters?|marketing|sales?|shop|store|specials|news|club|events?|webinars?)\b/;
const TRANSACTIONAL_LOCAL =
  /^(?:receipts?|billing|invoices?|orders?|shipping|shipment|shipment-tracking|tracking|accounts?|account-security|security|service|statements?|payments?|renewals?|bookings?|reservations?)\b/;

// Wording that marks each kind of mail, matched word by word on the subject and the new text.
const TRANSACTIONAL_PHRASES = [
  'receipt',
  'your order',
  'order number',
  'order no',
  'order confirmation',
  'has shipped',
  'has been shipped',
  'has dispatched',
  'has been dispatched',
  'has been delivered',
  'was delivered',
  'out for delivery',
  'track your package',
  'track your parcel',
  'track your order',
  'track your shipment',
  'tracking number',
  'waybill',
  'password reset',
  'reset your password',
  'verification code',
  'confirmation code',
  'security alert',
  'security code',
  'new sign-in',
  'unusual sign-in',
  'sign-in activity',
  'statement is ready',
  'statement is available',
  'statement is now available',
  'bill is ready',
  'payment received',
  'payment method',
  'payment confirmation',
  'amount paid',
  "you've received a payment",
  'you have received a payment',
  'appointment reminder',
  'reminder of your appointment',
  'check in now',
  'online check-in',
  'booking reference',
  'booking confirmation',
  'your booking',
  'subscription renewal',
  'subscription will renew',
  'will expire',
  'will renew',
  'expires in',
  'expires on',
  'terms of service',
  'privacy policy',
  'run failed',
  'build failed',
  'alert resolved',
  'is resolved',
  'assigned to you',
  'direct debit',
];
const MARKETING_PHRASES = [
  '# off',
  'sale',
  'discount',
  'coupon',
  'promo code',
  'use code',
  'shop now',
  'buy now',
  'order now',
  'book now',
  'enrol now',
  'enroll now',
  'register now',
  'free shipping',
  'free delivery',
  'limited time',
  'offer ends',
  'offer valid',
  'exclusive offer',
  'exclusive deal',
  'save up to',
  'save #',
  'early bird',
  'while supplies last',
  'while stocks last',
  'clearance',
  'black friday',
  'cyber monday',
  'new arrivals',
  'new collection',
  'last chance',
  "don't miss out",
  'treat yourself',
  'free trial',
  'upgrade to',
  'upgrade now',
  'upgrade today',
  'special offer',
  'half price',
  'rabatt',
  'gutschein',
  'soldes',
  'promotion',
  'oferta',
  'descuento',
];
const SOCIAL_PHRASES = [
  'liked your',
  'commented on your',
  'tagged you',
  'friend request',
  'invited you to connect',
  'invitation to connect',
  'add me to your',
  'followed you',
  'started following',
  'new follower',
  'new followers',
  'mentioned you',
  'replied to your comment',
  'replied to your post',
  'replied to your story',
  'gave you kudos',
  'reblogged',
  'boosted your',
  'favourited',
  'retweeted',
  'reposted',
  'work anniversary',
  'your network',
  'viewed your profile',
  'added you as a friend',
  'added you to the group',
  'kontaktanfrage',
  'vernetzen',
];
const FORUM_PHRASES = [
  'replied to the topic',
  'topic you are watching',
  'thread you follow',
  'thread you are watching',
  'new reply in',
  'new post in',
  'new posts in',
  'new answer to',
  'new answers to',
  'reply to the group',
  'reply to the list',
  'mailing list',
  'listinfo',
  'subscribed to the google groups',
  'unsubscribe from this group',
  'digest',
  "today's topics",
  'popular topics',
  'visit topic',
  'discussion welcome',
  'join the discussion',
  'forum post',
  'in the forum',
  'reading group',
];

const URGENT_PHRASES = [
  'urgent',
  'urgently',
  'asap',
  'as soon as possible',
  'immediately',
  'right away',
  'emergency',
  'critical',
  'time-sensitive',
  'time sensitive',
  'action required',
  'deadline',
  'by today',
  'by tonight',
  'by eod',
  'by end of day',
  'by end of the day',
  'by tomorrow',
  'by noon',
  'overdue',
  'final notice',
  'outage',
  'is down',
  'dringend',
  'sofort',
  'eilt',
  'urgence',
  'urgente',
  'inmediato',
  'lo antes posible',
];
const SECURITY_PHRASES = [
  'security alert',
  'unusual sign-in',
  'suspicious',
  'new sign-in',
  'password changed',
  'password was changed',
  'password reset',
  'password was reset',
  'account locked',
  'account suspended',
  'account compromised',
  'fraud',
];

/** All the wording the rules here and the priority estimate look for, matched in one pass per message. */
const WORDING = compilePhraseGroups({
  transactional: TRANSACTIONAL_PHRASES,
  marketing: MARKETING_PHRASES,
  social: SOCIAL_PHRASES,
  forum: FORUM_PHRASES,
  urgent: URGENT_PHRASES,
  security: SECURITY_PHRASES,
});
export type WordingGroup = 'transactional' | 'marketing' | 'social' | 'forum' | 'urgent' | 'security';
const wordings = new WeakMap<AnalysisInput, ReadonlyMap<string, string[]>>();

/** The wording of each group found in the subject and the new text of a message (computed once per input). */
export function wordingOf(input: AnalysisInput): ReadonlyMap<string, string[]> {
  let found = wordings.get(input);
  if (!found) {
    found = matchPhraseGroups(WORDING, subjectAndBody(input));
    wordings.set(input, found);
  }
  return found;
}

/** The wording of one group in a short text of its own, such as the subject. */
export function wordingIn(text: string, group: WordingGroup): string[] {
  return matchPhraseGroups(WORDING, text).get(group) ?? [];
}

function looksLikePersonName(name: string): boolean {
  const words = name.replace(/["']/g, '').trim().split(/\s+/);
  return (
    words.length >= 2 &&
    words.length <= 4 &&
    words.every((w) => /^\p{Lu}[\p{L}'’.-]*$/u.test(w)) &&
    !/\b(?:team|support|news|info|service|notifications?|alerts?|via|digest|community|forum|group|store|shop)\b/i.test(
      name,
    )
  );
}

interface RuleOutcome {
  weights: Record<BuiltInCategory, number>;
  reasons: string[];
}

function applyRules(input: AnalysisInput): RuleOutcome {
  const weights: Record<BuiltInCategory, number> = {
    primary: 0,
    social: 0,
    promotions: 0,
    updates: 0,
    forums: 0,
  };
  const reasons: string[] = [];
  const add = (w: Weights, reason: string) => {
    for (const [category, value] of Object.entries(w)) weights[category as BuiltInCategory] += value;
    reasons.push(reason);
  };
  const listId = header(input, 'list-id');
  const listPost = header(input, 'list-post');
  const unsubscribe = header(input, 'list-unsubscribe');
  const precedence = header(input, 'precedence')?.toLowerCase().trim();
  const autoSubmitted = header(input, 'auto-submitted')?.toLowerCase().trim();
  const local = input.from?.address.split('@')[0] ?? '';
  const domain = senderDomain(input);
  const subject = input.subject;
  const reply = /^\s*(?:re|aw|sv|antw|réf)\s*:/i.test(subject);
  const bulk = Boolean(listId || unsubscribe || precedence || (autoSubmitted && autoSubmitted !== 'no'));

  if (listId)
    add({ forums: 1.5, updates: 0.5, promotions: 0.3, primary: -1.5 }, 'List-Id header (list mail)');
  if (listPost) add({ forums: 1.5, primary: -0.5 }, 'List-Post header (people can post to the list)');
  if (listId && reply) add({ forums: 1 }, 'a reply on a mailing list');
  if (
    header(input, 'x-mailman-version') ||
    header(input, 'x-mailing-list') ||
    header(input, 'list-archive') ||
    input.headers.some((h) => h.name.startsWith('x-discourse-') || h.name === 'x-google-group-id')
  ) {
    add({ forums: 1.2 }, 'mailing-list or forum software headers');
  }
  if (unsubscribe && !listPost) {
    add({ promotions: 1.2, updates: 0.6, social: 0.6, forums: 0.3, primary: -2 }, 'List-Unsubscribe header');
  }
  if (precedence === 'list') add({ forums: 1.5, primary: -1.5 }, 'Precedence: list');
  else if (precedence === 'bulk' || precedence === 'junk') {
    add({ promotions: 0.5, updates: 0.5, social: 0.3, primary: -1.5 }, `Precedence: ${precedence}`);
  }
  if (autoSubmitted && autoSubmitted !== 'no') {
    add({ updates: 2, primary: -2, promotions: -0.5 }, `Auto-Submitted: ${autoSubmitted}`);
  }
  if (SOCIAL_DOMAINS.has(domain)) add({ social: 3.5 }, `sender domain ${domain} is a social network`);
  if (NO_REPLY_LOCAL.test(local))
    add({ updates: 1, social: 0.3, primary: -1.5 }, `no-reply sender (${local}@)`);
  else if (NOTIFICATION_LOCAL.test(local)) {
    add({ updates: 0.7, social: 0.5, forums: 0.3, primary: -1.5 }, `notification sender (${local}@)`);
  } else if (MARKETING_LOCAL.test(local)) add({ promotions: 1, primary: -1 }, `marketing sender (${local}@)`);
  else if (TRANSACTIONAL_LOCAL.test(local))
    add({ updates: 1.2, primary: -1 }, `transactional sender (${local}@)`);

  const wording = wordingOf(input);
  const transactional = wording.get('transactional')?.length ?? 0;
  if (transactional > 0) {
    add({ updates: Math.min(2.4, 0.8 * transactional) }, `transactional wording (${transactional})`);
  }
  const marketing = wording.get('marketing')?.length ?? 0;
  if (marketing > 0) {
    add({ promotions: Math.min(2.1, 0.7 * marketing) }, `marketing wording (${marketing})`);
    if (unsubscribe) add({ promotions: 0.8 }, 'marketing wording with an unsubscribe link');
  }
  const social = wording.get('social')?.length ?? 0;
  if (social > 0) add({ social: Math.min(2, social) }, `social-network wording (${social})`);
  const forum = wording.get('forum')?.length ?? 0;
  if (forum > 0) add({ forums: Math.min(2, 0.8 * forum) }, `discussion-list wording (${forum})`);
  if (/^\s*(?:re:\s*)?\[[^\]]{2,40}\]/i.test(subject) && (listId || precedence === 'list')) {
    add({ forums: 0.5 }, 'list tag in the subject');
  }

  // Without bulk headers, each kind of machine-sent mail still shows its own markers; a message with none
  // of them is unlikely to be of that kind, whatever its words resemble.
  if (!bulk && forum === 0 && !NOTIFICATION_LOCAL.test(local)) {
    add({ forums: -2 }, 'no list or forum markers');
  }
  if (!bulk && marketing === 0 && !MARKETING_LOCAL.test(local)) {
    add({ promotions: -1.5 }, 'no marketing wording or sender');
  }
  if (!bulk && social === 0 && !SOCIAL_DOMAINS.has(domain)) {
    add({ social: -1.5 }, 'no social-network sender or wording');
  }
  if (!bulk) {
    const name = input.from?.name ?? '';
    if (looksLikePersonName(name) && !NO_REPLY_LOCAL.test(local) && !NOTIFICATION_LOCAL.test(local)) {
      add({ primary: 1.5 }, 'sent by a person, not a list or a system');
    }
    if (FREE_MAIL_DOMAINS.has(domain)) add({ primary: 0.8 }, `personal mail provider (${domain})`);
    if (header(input, 'in-reply-to') || header(input, 'references')) {
      add({ primary: 1 }, 'a reply in a conversation');
    }
  }
  return { weights, reasons };
}

// ---------------------------------------------------------------------------------------------------------

/** Built-in categorisation alone: rules plus the built-in text model. */
function builtInCategory(input: AnalysisInput, words: string[]): CategoryResult {
  const { weights, reasons } = applyRules(input);
  const text = posteriors(builtInTable, words, UNIFORM_PRIORS);
  const textProbability = Object.fromEntries(text.ranked.map((p) => [p.name, p.probability]));
  const combined = softmax(
    BUILT_IN_CATEGORIES.map((name) => ({
      name,
      logit: Math.log(textProbability[name] ?? 1e-6) + weights[name],
    })),
  );
  const best = combined[0]!;
  const textBest = text.ranked[0]!;
  if (text.known > 0) {
    reasons.push(
      `text model: ${textBest.name} (${textBest.probability.toFixed(2)}, ${text.known} known words)`,
    );
  }
  return { category: best.name, confidence: round(best.probability), reasons };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function categorize(input: AnalysisInput, custom?: CustomCategoryModel): CategoryResult {
  const words = messageWords(input);
  const result = builtInCategory(input, words);
  if (!custom || custom.classes.length === 0) return result;
  const features = customFeatures(input);
  const priors: Record<string, number> = {};
  const customClasses = custom.classes.filter((c) => c.name !== BACKGROUND);
  const customDocuments = customClasses.reduce((s, c) => s + c.documents, 0);
  for (const c of customClasses) priors[c.name] = (0.5 * c.documents) / Math.max(1, customDocuments);
  priors[BACKGROUND] = 0.5;
  let table = customTables.get(custom);
  if (!table) {
    table = scoringTable(custom.classes, custom.vocabulary);
    customTables.set(custom, table);
  }
  const { ranked } = posteriors(table, features, priors);
  const best = ranked[0]!;
  if (best.name !== BACKGROUND && best.probability >= custom.threshold) {
    return {
      category: best.name,
      confidence: round(best.probability),
      reasons: [`custom category "${best.name}" (${best.probability.toFixed(2)})`, ...result.reasons],
    };
  }
  return result;
}

/** Default probability a custom category needs to override the built-in one. */
export const CUSTOM_CATEGORY_THRESHOLD = 0.8;

/**
 * A model of an organisation's own categories from labelled messages. Ordinary mail (the built-in training
 * examples) forms a background class, so a message like none of the examples keeps its built-in category.
 */
export function trainCustomCategories(
  examples: Array<{ category: string; input: AnalysisInput }>,
  options: { threshold?: number } = {},
): CustomCategoryModel {
  const documents = examples.map((e) => ({ name: e.category.trim(), features: customFeatures(e.input) }));
  if (documents.some((d) => d.name === '' || d.name === BACKGROUND)) {
    throw new Error(`category names must be non-empty and not "${BACKGROUND}"`);
  }
  for (const name of BUILT_IN_CATEGORIES) {
    for (const text of TRAINING[name]) documents.push({ name: BACKGROUND, features: wordFeatures(text) });
  }
  const { classes, vocabulary } = buildClasses(documents);
  return { version: 1, threshold: options.threshold ?? CUSTOM_CATEGORY_THRESHOLD, classes, vocabulary };
}
