// Attachments that run code or hide it: executables and scripts (by name and by content), HTML files,
// macro-enabled Office documents, names with a decoy extension in front of the real one, and zip
// archives holding any of these. Archives are read in memory with caps on size, entries and depth;
// nothing is written to disk.
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { AnalysisAttachment } from '../input.ts';
import type { ThreatFinding } from './findings.ts';

const EXECUTABLE_EXTENSIONS = new Set([
  'exe',
  'scr',
  'js',
  'jse',
  'vbs',
  'vbe',
  'wsf',
  'wsh',
  'bat',
  'cmd',
  'ps1',
  'psm1',
  'jar',
  'msi',
  'msp',
  'com',
  'pif',
  'cpl',
  'lnk',
  'hta',
  'iso',
  'img',
  'vhd',
  'vhdx',
  'reg',
  'msc',
  'appx',
  'msix',
  'appref-ms',
  'application',
  'gadget',
  'scf',
  'inf',
  'chm',
  'apk',
  'dll',
]);
const HTML_EXTENSIONS = new Set(['html', 'htm', 'shtml', 'xhtml', 'mht', 'mhtml', 'svg']);
const MACRO_EXTENSIONS = new Set([
  'docm',
  'dotm',
  'xlsm',
  'xltm',
  'xlam',
  'pptm',
  'potm',
  'ppsm',
  'ppam',
  'sldm',
]);
const OLE_EXTENSIONS = new Set(['doc', 'dot', 'xls', 'xlt', 'xla', 'ppt', 'pot', 'pps']);
const OOXML_EXTENSIONS = new Set([
  'docx',
  'xlsx',
  'pptx',
  'dotx',
  'xltx',
  'potx',
  'ppsx',
  ...MACRO_EXTENSIONS,
]);
/** Extensions a double-extension name puts first to look harmless. */
const DECOY_EXTENSIONS = new Set([
  'pdf',
  'doc',
  'docx',
  'xls',
  'xlsx',
  'ppt',
  'pptx',
  'txt',
  'rtf',
  'csv',
  'jpg',
  'jpeg',
  'png',
  'gif',
  'bmp',
  'tif',
  'tiff',
  'mp3',
  'mp4',
  'wav',
  'mov',
  'zip',
  'odt',
  'ods',
  'eml',
  'msg',
]);
/** Archive formats this detector cannot open; the obsolete ones are used mainly to slip past scanners. */
const OTHER_ARCHIVES = new Map<string, 'low' | 'medium'>([
  ['rar', 'low'],
  ['7z', 'low'],
  ['gz', 'low'],
  ['tgz', 'low'],
  ['tar', 'low'],
  ['bz2', 'low'],
  ['xz', 'low'],
  ['ace', 'medium'],
  ['arj', 'medium'],
  ['cab', 'medium'],
  ['lzh', 'medium'],
  ['lha', 'medium'],
  ['uue', 'medium'],
  ['z', 'medium'],
]);

/** Document formats that are zip packages of markup and images, not archives a reader unpacks. */
const ZIP_DOCUMENTS = new Set([
  'epub',
  'odt',
  'ods',
  'odp',
  'odg',
  'ott',
  'xps',
  'oxps',
  'kmz',
  '3mf',
  'vsdx',
  'pages',
  'numbers',
  'key',
]);

/** Archives larger than this are not opened. */
export const MAX_ARCHIVE_BYTES = 25 * 1024 * 1024;
/** Entries listed per archive; names beyond are not checked. */
export const MAX_ARCHIVE_ENTRIES = 1000;
/** Nested archives and documents are read into memory up to this size each... */
const MAX_INNER_BYTES = 8 * 1024 * 1024;
/** ...and this much in all for one message. */
const MAX_INNER_TOTAL_BYTES = 32 * 1024 * 1024;
/** zip in zip in zip: deeper levels are not opened. */
const MAX_ARCHIVE_DEPTH = 3;
/** A ratio beyond this is a compression bomb, not a document. */
const MAX_COMPRESSION_RATIO = 200;

const OLE_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
// Directory entries in a compound file are UTF-16LE names; every VBA project has this stream.
const VBA_PROJECT_STREAM = Buffer.from('_VBA_PROJECT', 'utf16le');
// Embedding, override and isolate controls reorder what follows; plain RLM/LRM marks do not.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/;

type RiskKind = 'executable' | 'html' | 'macro' | 'double_extension';

interface NameRisk {
  kind: RiskKind;
  reason: string;
}

function extensions(name: string): string[] {
  const base = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  return base
    .toLowerCase()
    .replace(/[\s.]+$/, '')
    .split('.')
    .slice(1)
    .map((e) => e.trim());
}

/** What a file name alone says about the file. */
export function riskOfName(name: string): NameRisk | null {
  if (BIDI_CONTROLS.test(name))
    return {
      kind: 'double_extension',
      reason: 'uses a text-direction control character to disguise its extension',
    };
  const exts = extensions(name);
  const last = exts.at(-1);
  if (!last) return null;
  const runs = EXECUTABLE_EXTENSIONS.has(last) || HTML_EXTENSIONS.has(last) || MACRO_EXTENSIONS.has(last);
  const decoy = exts.at(-2);
  if (runs && decoy && DECOY_EXTENSIONS.has(decoy))
    return { kind: 'double_extension', reason: `hides .${last} behind .${decoy}` };
  if (EXECUTABLE_EXTENSIONS.has(last)) return { kind: 'executable', reason: `.${last} runs as a program` };
  if (HTML_EXTENSIONS.has(last)) return { kind: 'html', reason: `.${last} opens in a browser` };
  if (MACRO_EXTENSIONS.has(last))
    return { kind: 'macro', reason: `.${last} is a macro-enabled Office format` };
  return null;
}

function lastExtension(name: string): string {
  return extensions(name).at(-1) ?? '';
}

/** A Windows program: the MZ header pointing at a PE signature. */
function isWindowsExecutable(content: Buffer): boolean {
  if (content.length < 0x40 || content[0] !== 0x4d || content[1] !== 0x5a) return false;
  const peOffset = content.readUInt32LE(0x3c);
  return peOffset + 4 <= content.length && content.readUInt32BE(peOffset) === 0x50450000;
}

function hasVbaProject(content: Buffer): boolean {
  return content.subarray(0, 8).equals(OLE_MAGIC) && content.includes(VBA_PROJECT_STREAM);
}

// What a browser would do with an HTML attachment that asks for a password or sends the reader away.
const HTML_HARVEST = /<input[^>]+type\s*=\s*["']?password|<form\b/i;
const HTML_SCRIPTED_REDIRECT =
  /(?:window|document|top|self)\.location|location\.(?:href|replace)|atob\s*\(|unescape\s*\(|eval\s*\(/i;
const SVG_ACTIVE = /<script\b|<foreignobject\b|\bon(?:load|click|mouseover)\s*=/i;

interface ArchiveBudget {
  innerBytes: number;
}

interface ArchiveEntryReport {
  path: string;
  risk: NameRisk | null;
  encrypted: boolean;
}

interface ArchiveReport {
  entries: ArchiveEntryReport[];
  encrypted: string[];
  /** Why (part of) the archive could not be checked. */
  problems: string[];
}

async function readLimited(stream: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The names in a zip (and in zips and Office documents inside it), without extracting to disk. */
async function inspectZip(
  content: Buffer,
  path: string,
  depth: number,
  budget: ArchiveBudget,
  report: ArchiveReport,
): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(content, { lazyEntries: true, validateEntrySizes: true });
  } catch (error) {
    report.problems.push(`${path} could not be read as a zip (${(error as Error).message})`);
    return;
  }
  if (zip.entryCount > MAX_ARCHIVE_ENTRIES)
    report.problems.push(
      `${path} holds ${zip.entryCount} entries; only the first ${MAX_ARCHIVE_ENTRIES} were checked`,
    );
  let listed = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      if (++listed > MAX_ARCHIVE_ENTRIES) break;
      if (entry.fileName.endsWith('/')) continue;
      const entryPath = `${path}/${entry.fileName}`;
      const encrypted = entry.isEncrypted();
      if (encrypted) report.encrypted.push(entry.fileName);
      let risk = riskOfName(entry.fileName);
      const ext = lastExtension(entry.fileName);
      const opensInside = ext === 'zip' || OLE_EXTENSIONS.has(ext) || OOXML_EXTENSIONS.has(ext);
      if (!encrypted && opensInside && depth < MAX_ARCHIVE_DEPTH) {
        const inner = await readEntry(zip, entry, entryPath, budget, report);
        if (inner && OLE_EXTENSIONS.has(ext) && hasVbaProject(inner))
          risk = { kind: 'macro', reason: 'is an Office document with a VBA macro project' };
        else if (inner && (ext === 'zip' || OOXML_EXTENSIONS.has(ext))) {
          if (OOXML_EXTENSIONS.has(ext)) {
            const macro = await ooxmlMacroPart(inner);
            if (macro)
              risk = { kind: 'macro', reason: `is an Office document with a VBA macro project (${macro})` };
          } else await inspectZip(inner, entryPath, depth + 1, budget, report);
        }
      } else if (opensInside && depth >= MAX_ARCHIVE_DEPTH) {
        report.problems.push(`${entryPath} is nested too deep to open`);
      }
      report.entries.push({ path: entryPath, risk, encrypted });
    }
  } catch (error) {
    report.problems.push(`${path} is damaged (${(error as Error).message})`);
  } finally {
    zip.close();
  }
}

async function readEntry(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  entryPath: string,
  budget: ArchiveBudget,
  report: ArchiveReport,
): Promise<Buffer | null> {
  const size = entry.uncompressedSize;
  if (size > MAX_INNER_BYTES || budget.innerBytes + size > MAX_INNER_TOTAL_BYTES) {
    report.problems.push(`${entryPath} is too large to open (${size} bytes)`);
    return null;
  }
  if (entry.compressedSize > 0 && size / entry.compressedSize > MAX_COMPRESSION_RATIO && size > 1024 * 1024) {
    report.problems.push(
      `${entryPath} expands ${Math.round(size / entry.compressedSize)}-fold, like a zip bomb`,
    );
    return null;
  }
  budget.innerBytes += size;
  try {
    return await readLimited(await zip.openReadStreamPromise(entry), MAX_INNER_BYTES);
  } catch (error) {
    report.problems.push(`${entryPath} could not be read (${(error as Error).message})`);
    return null;
  }
}

/** The VBA part of an OOXML package (word/vbaProject.bin), or null. */
async function ooxmlMacroPart(content: Buffer): Promise<string | null> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(content, { lazyEntries: true });
  } catch {
    return null;
  }
  try {
    let listed = 0;
    for await (const entry of zip.eachEntry()) {
      if (++listed > MAX_ARCHIVE_ENTRIES) break;
      if (/(^|\/)vbaProject\.bin$/i.test(entry.fileName)) return entry.fileName;
    }
  } catch {
    return null;
  } finally {
    zip.close();
  }
  return null;
}

function riskFinding(name: string, risk: NameRisk, inArchive: string | null): ThreatFinding {
  if (inArchive)
    return {
      code: 'archive_risky_content',
      severity: 'high',
      evidence: `Archive "${inArchive}" holds "${name}", which ${risk.reason}`,
      detail: { archive: inArchive, entry: name, kind: risk.kind },
    };
  const code =
    risk.kind === 'executable'
      ? 'executable_attachment'
      : risk.kind === 'html'
        ? 'html_attachment'
        : risk.kind === 'macro'
          ? 'macro_document'
          : 'double_extension';
  const severity = risk.kind === 'executable' || risk.kind === 'double_extension' ? 'high' : 'medium';
  return {
    code,
    severity,
    evidence: `Attachment "${name}" ${risk.reason}`,
    detail: { filename: name, kind: risk.kind },
  };
}

async function attachmentFindingsFor(
  attachment: AnalysisAttachment,
  budget: ArchiveBudget,
): Promise<ThreatFinding[]> {
  const name = attachment.filename ?? '(unnamed attachment)';
  const content = attachment.content;
  const ext = lastExtension(name);
  const findings: ThreatFinding[] = [];
  const risk = riskOfName(name);

  if (risk?.kind === 'html') {
    const head = content.subarray(0, 512 * 1024).toString('latin1');
    if (ext === 'svg') {
      // SVG is an image unless it carries script.
      if (SVG_ACTIVE.test(head))
        findings.push({
          code: 'html_attachment',
          severity: 'high',
          evidence: `Attachment "${name}" is an SVG image carrying script`,
          detail: { filename: name, kind: 'svg_script' },
        });
    } else {
      const harvest = HTML_HARVEST.test(head);
      const redirect = HTML_SCRIPTED_REDIRECT.test(head);
      findings.push({
        code: 'html_attachment',
        severity: harvest || redirect ? 'high' : 'medium',
        evidence: `Attachment "${name}" ${risk.reason}${harvest ? ' and holds a form' : ''}${redirect ? ' and runs script that moves or decodes content' : ''}`,
        detail: { filename: name, form: harvest ? 1 : 0, script: redirect ? 1 : 0 },
      });
    }
  } else if (
    risk &&
    !(risk.kind === 'macro' && OOXML_EXTENSIONS.has(ext) && content.subarray(0, 4).equals(ZIP_MAGIC))
  ) {
    // (A macro-enabled OOXML name is reported below, once its package is opened.)
    findings.push(riskFinding(name, risk, null));
  }

  if (risk?.kind !== 'executable') {
    if (isWindowsExecutable(content))
      findings.push({
        code: 'executable_attachment',
        severity: 'high',
        evidence: `Attachment "${name}" is a Windows program (MZ/PE header) whatever its name says`,
        detail: { filename: name, kind: 'pe_content' },
      });
  }
  // By content, whatever the name: a .doc, an .xls, or a macro document renamed to look like something else.
  if (hasVbaProject(content))
    findings.push({
      code: 'macro_document',
      severity: 'high',
      evidence: `Attachment "${name}" is an Office document with a VBA macro project (_VBA_PROJECT stream)`,
      detail: { filename: name, kind: 'ole_vba' },
    });

  const isZip = content.subarray(0, 4).equals(ZIP_MAGIC);
  if (isZip && OOXML_EXTENSIONS.has(ext)) {
    const macro = await ooxmlMacroPart(content);
    if (macro)
      findings.push({
        code: 'macro_document',
        severity: 'high',
        evidence: `Attachment "${name}" is an Office document with a VBA macro project (${macro})`,
        detail: { filename: name, kind: 'ooxml_vba', part: macro },
      });
    else if (risk?.kind === 'macro') findings.push(riskFinding(name, risk, null));
  } else if (isZip && ext !== 'jar' && ext !== 'apk' && !ZIP_DOCUMENTS.has(ext)) {
    findings.push(...(await archiveFindings(name, content, budget)));
  } else if (OTHER_ARCHIVES.has(ext)) {
    findings.push({
      code: 'uninspectable_archive',
      severity: OTHER_ARCHIVES.get(ext)!,
      evidence: `Attachment "${name}" is a .${ext} archive, which is not opened for inspection`,
      detail: { filename: name, format: ext },
    });
  }
  return findings;
}

async function archiveFindings(
  name: string,
  content: Buffer,
  budget: ArchiveBudget,
): Promise<ThreatFinding[]> {
  if (content.length > MAX_ARCHIVE_BYTES)
    return [
      {
        code: 'uninspectable_archive',
        severity: 'low',
        evidence: `Archive "${name}" is ${content.length} bytes, over the ${MAX_ARCHIVE_BYTES}-byte inspection limit`,
        detail: { filename: name, size: content.length },
      },
    ];
  const report: ArchiveReport = { entries: [], encrypted: [], problems: [] };
  await inspectZip(content, name, 1, budget, report);
  const findings: ThreatFinding[] = [];
  for (const entry of report.entries)
    if (entry.risk) findings.push(riskFinding(entry.path.slice(name.length + 1), entry.risk, name));
  if (report.encrypted.length) {
    const shown = report.encrypted.slice(0, 5).map((n) => `"${n}"`);
    findings.push({
      code: 'encrypted_archive',
      severity: 'medium',
      evidence: `Archive "${name}" is password-protected (${report.encrypted.length} encrypted ${report.encrypted.length === 1 ? 'entry' : 'entries'}: ${shown.join(', ')}), so its contents cannot be scanned`,
      detail: { filename: name, encrypted_entries: report.encrypted.length },
    });
  }
  if (report.problems.length)
    findings.push({
      code: 'uninspectable_archive',
      severity: 'low',
      evidence: `Archive "${name}" could not be fully checked: ${report.problems.slice(0, 3).join('; ')}`,
      detail: { filename: name, problems: report.problems.length },
    });
  return findings;
}

export async function attachmentFindings(attachments: AnalysisAttachment[]): Promise<ThreatFinding[]> {
  const budget: ArchiveBudget = { innerBytes: 0 };
  const findings: ThreatFinding[] = [];
  for (const attachment of attachments) findings.push(...(await attachmentFindingsFor(attachment, budget)));
  return findings;
}
