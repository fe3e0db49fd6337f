// Well-known brands that phishing imitates, with the registrable domains they really send from and
// link to, and the names a display name uses to claim them. The list is what impersonation checks
// compare against; a domain listed here is never reported as a lookalike.
import { parse } from 'tldts';

export interface Brand {
  name: string;
  /** Registrable domains the brand owns. Country-code variants of these labels count as owned too. */
  domains: string[];
  /** Names that identify the brand wherever they stand in a display name ("PayPal Service"). */
  names: string[];
  /**
   * Names that are also ordinary words or given names ("Chase", "Apple"): they claim the brand only
   * when every other word of the display name is a service word ("Chase Online Banking").
   */
  ambiguousNames?: string[];
  /**
   * Domain labels that are ordinary words (live, office, slack): used for exact and homoglyph matches
   * only, since slack.net or zoom-photo.com are someone else's.
   */
  genericLabels?: string[];
}

export const BRANDS: Brand[] = [
  {
    name: 'PayPal',
    domains: ['paypal.com', 'paypal.me', 'paypalobjects.com', 'venmo.com'],
    names: ['paypal'],
  },
  {
    name: 'Microsoft',
    domains: [
      'microsoft.com',
      'microsoftonline.com',
      'live.com',
      'outlook.com',
      'office.com',
      'office365.com',
      'hotmail.com',
      'msn.com',
      'azure.com',
      'sharepoint.com',
      'onedrive.com',
      'skype.com',
      'bing.com',
      'windows.com',
      'xbox.com',
      'microsoftstore.com',
      'microsoft365.com',
    ],
    names: ['microsoft', 'office 365', 'microsoft 365', 'onedrive', 'sharepoint', 'windows defender', 'xbox'],
    ambiguousNames: ['outlook', 'office', 'azure', 'teams'],
    genericLabels: ['live', 'outlook', 'office', 'windows', 'azure', 'bing', 'msn'],
  },
  {
    name: 'Google',
    domains: [
      'google.com',
      'gmail.com',
      'googlemail.com',
      'youtube.com',
      'googleusercontent.com',
      'withgoogle.com',
      'googleapis.com',
      'gstatic.com',
      'g.co',
      'goo.gl',
      'google-analytics.com',
      'youtube-nocookie.com',
      'googleblog.com',
      'googlegroups.com',
      'googleadservices.com',
      'googletagmanager.com',
      'googlesyndication.com',
    ],
    names: ['google', 'gmail', 'youtube', 'google workspace', 'google drive'],
  },
  {
    name: 'Apple',
    domains: ['apple.com', 'icloud.com', 'me.com', 'mac.com', 'itunes.com', 'apple.news'],
    names: ['icloud', 'itunes', 'app store', 'apple id', 'apple support', 'apple pay'],
    ambiguousNames: ['apple'],
    genericLabels: ['me', 'mac'],
  },
  {
    name: 'Amazon',
    domains: [
      'amazon.com',
      'amazon.co.uk',
      'amazon.de',
      'amazon.fr',
      'amazon.ca',
      'amazon.jobs',
      'amazonaws.com',
      'amazonses.com',
      'amazon-adsystem.com',
      'media-amazon.com',
      'primevideo.com',
      'a2z.com',
      'awstrack.me',
      'audible.com',
      'amazontrust.com',
    ],
    names: ['amazon', 'amazon prime', 'prime video', 'aws', 'amazon web services'],
  },
  { name: 'Netflix', domains: ['netflix.com', 'nflxext.com', 'nflximg.net'], names: ['netflix'] },
  { name: 'Spotify', domains: ['spotify.com', 'scdn.co', 'spotifycdn.com'], names: ['spotify'] },
  {
    name: 'DHL',
    domains: ['dhl.com', 'dhl.de', 'dhl.co.uk', 'dpdhl.com', 'deutschepost.de'],
    names: ['dhl'],
  },
  { name: 'FedEx', domains: ['fedex.com'], names: ['fedex'] },
  { name: 'UPS', domains: ['ups.com'], names: [], ambiguousNames: ['ups'] },
  { name: 'USPS', domains: ['usps.com', 'usps.gov'], names: ['usps', 'united states postal service'] },
  { name: 'Royal Mail', domains: ['royalmail.com', 'royalmail.co.uk'], names: ['royal mail'] },
  {
    name: 'Chase',
    domains: ['chase.com', 'jpmorgan.com', 'jpmorganchase.com'],
    names: ['jpmorgan', 'chase bank', 'jpmorgan chase'],
    ambiguousNames: ['chase'],
  },
  {
    name: 'Bank of America',
    domains: ['bankofamerica.com', 'bofa.com', 'ml.com'],
    names: ['bank of america', 'bofa'],
  },
  { name: 'Wells Fargo', domains: ['wellsfargo.com', 'wf.com'], names: ['wells fargo', 'wellsfargo'] },
  {
    name: 'Citi',
    domains: ['citi.com', 'citibank.com', 'citigroup.com'],
    names: ['citibank'],
    ambiguousNames: ['citi'],
  },
  { name: 'Capital One', domains: ['capitalone.com'], names: ['capital one', 'capitalone'] },
  {
    name: 'American Express',
    domains: ['americanexpress.com', 'aexp.com', 'amex.com'],
    names: ['american express', 'amex'],
  },
  { name: 'HSBC', domains: ['hsbc.com', 'hsbc.co.uk'], names: ['hsbc'] },
  {
    name: 'Barclays',
    domains: ['barclays.com', 'barclays.co.uk', 'barclaycard.co.uk'],
    names: ['barclays', 'barclaycard'],
  },
  {
    name: 'Lloyds Bank',
    domains: ['lloydsbank.com', 'lloydsbank.co.uk'],
    names: ['lloyds bank'],
    ambiguousNames: ['lloyds'],
  },
  { name: 'NatWest', domains: ['natwest.com'], names: ['natwest'] },
  { name: 'Santander', domains: ['santander.com', 'santander.co.uk'], names: ['santander'] },
  { name: 'Deutsche Bank', domains: ['db.com', 'deutsche-bank.de'], names: ['deutsche bank'] },
  { name: 'ING', domains: ['ing.com', 'ing.nl', 'ing.de'], names: ['ing bank'] },
  { name: 'Revolut', domains: ['revolut.com'], names: ['revolut'] },
  { name: 'Visa', domains: ['visa.com'], names: [], ambiguousNames: ['visa'], genericLabels: ['visa'] },
  { name: 'Mastercard', domains: ['mastercard.com'], names: ['mastercard'] },
  { name: 'Coinbase', domains: ['coinbase.com'], names: ['coinbase'] },
  { name: 'Binance', domains: ['binance.com'], names: ['binance'] },
  {
    name: 'Stripe',
    domains: ['stripe.com'],
    names: [],
    ambiguousNames: ['stripe'],
    genericLabels: ['stripe'],
  },
  {
    name: 'Intuit',
    domains: ['intuit.com', 'quickbooks.com', 'turbotax.com'],
    names: ['intuit', 'quickbooks', 'turbotax'],
  },
  {
    name: 'Meta',
    domains: ['facebook.com', 'facebookmail.com', 'fb.com', 'meta.com', 'instagram.com', 'whatsapp.com'],
    names: ['facebook', 'instagram', 'whatsapp', 'meta for business'],
    ambiguousNames: ['meta'],
    genericLabels: ['meta'],
  },
  { name: 'LinkedIn', domains: ['linkedin.com', 'licdn.com'], names: ['linkedin'] },
  { name: 'X', domains: ['twitter.com', 'x.com', 't.co'], names: ['twitter'] },
  {
    name: 'Dropbox',
    domains: ['dropbox.com', 'dropboxmail.com', 'dropboxusercontent.com'],
    names: ['dropbox'],
  },
  { name: 'DocuSign', domains: ['docusign.com', 'docusign.net'], names: ['docusign'] },
  {
    name: 'Adobe',
    domains: ['adobe.com', 'adobesign.com', 'echosign.com'],
    names: ['adobe', 'adobe sign', 'adobe acrobat'],
  },
  {
    name: 'Zoom',
    domains: ['zoom.us', 'zoom.com'],
    names: [],
    ambiguousNames: ['zoom'],
    genericLabels: ['zoom'],
  },
  { name: 'Slack', domains: ['slack.com'], names: [], ambiguousNames: ['slack'], genericLabels: ['slack'] },
  { name: 'GitHub', domains: ['github.com', 'githubusercontent.com', 'githubassets.com'], names: ['github'] },
  { name: 'Yahoo', domains: ['yahoo.com', 'yahoo.co.uk', 'ymail.com'], names: ['yahoo'] },
  { name: 'eBay', domains: ['ebay.com', 'ebay.co.uk', 'ebay.de'], names: ['ebay'] },
  {
    name: 'Steam',
    domains: ['steampowered.com', 'steamcommunity.com'],
    names: ['steam support'],
    ambiguousNames: ['steam'],
  },
  { name: 'Booking.com', domains: ['booking.com'], names: ['booking com'], genericLabels: ['booking'] },
  { name: 'Airbnb', domains: ['airbnb.com'], names: ['airbnb'] },
  { name: 'Walmart', domains: ['walmart.com'], names: ['walmart'] },
  { name: 'HMRC', domains: ['hmrc.gov.uk'], names: ['hmrc'] },
  { name: 'IRS', domains: ['irs.gov'], names: ['internal revenue service'], ambiguousNames: ['irs'] },
  {
    name: 'Norton',
    domains: ['norton.com', 'nortonlifelock.com'],
    names: ['norton antivirus', 'nortonlifelock'],
  },
  { name: 'McAfee', domains: ['mcafee.com'], names: ['mcafee'] },
];

// Words a service puts around its name in a display name: "Chase Online Banking Alerts".
export const SERVICE_WORDS = new Set(
  (
    'support team service services customer customers care security secure account accounts billing help ' +
    'helpdesk desk center centre notification notifications alert alerts no reply noreply do not online id ' +
    'inc corp llc ltd the official department dept verification verify update updates info mail email ' +
    'admin administrator it payments payment store app member members rewards delivery express shipping ' +
    'bank banking card cards fraud prevention protection safety trust communications message messages ' +
    'bill statement statements de us uk com net org prime plus pay wallet direct mobile'
  ).split(' '),
);

const brandByDomain = new Map<string, Brand>();
const brandByLabel = new Map<string, Brand>();
for (const brand of BRANDS) {
  for (const domain of brand.domains) {
    brandByDomain.set(domain, brand);
    const label = parse(domain).domainWithoutSuffix;
    if (label && !brandByLabel.has(label)) brandByLabel.set(label, brand);
  }
}

// Country domains where the big brands run local sites (amazon.de, google.co.uk). Country codes sold as
// generic or free names (.tk, .ml, .co, .io, .me, .cc) are left out: paypal.tk is not PayPal's.
const BRAND_COUNTRIES = new Set(
  (
    'uk de fr it es nl be ch at ie pt se no dk fi pl cz gr hu ro ca us mx br ar cl au nz jp kr cn hk tw sg ' +
    'my th id ph vn in ae sa il tr za eg ng ke ru ua'
  ).split(' '),
);

/** Country-code suffixes: co.uk, com.au, de, fr. A brand's label under one of these is the brand's own. */
function isCountrySuffix(suffix: string): boolean {
  return BRAND_COUNTRIES.has(suffix.slice(suffix.lastIndexOf('.') + 1));
}

/** The brand that owns a registrable domain: listed, or a listed label under a country-code suffix. */
export function brandOwning(registrable: string | null): Brand | null {
  if (!registrable) return null;
  const listed = brandByDomain.get(registrable);
  if (listed) return listed;
  const dot = registrable.indexOf('.');
  if (dot < 0) return null;
  const label = registrable.slice(0, dot);
  const brand = brandByLabel.get(label);
  const owned =
    brand &&
    label.length >= 3 &&
    isCountrySuffix(registrable.slice(dot + 1)) &&
    !brand.genericLabels?.includes(label);
  return owned ? brand : null;
}
