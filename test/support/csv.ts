// Reading CSV files back in tests.
import assert from 'node:assert/strict';

/** RFC 4180, strictly: CRLF after every record, quotes only around whole fields, "" inside them. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') field += c;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = false;
        assert.ok([',', '\r'].includes(text[i + 1]), 'a closing quote ends the field');
      }
    } else if (c === '"') {
      assert.equal(field, '', 'a quote opens a field or is doubled inside a quoted one');
      quoted = true;
    } else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r') {
      assert.equal(text[i + 1], '\n', 'records end with CRLF');
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else {
      assert.notEqual(c, '\n', 'no bare LF outside quotes');
      field += c;
    }
  }
  assert.equal(quoted, false, 'every quote is closed');
  assert.ok(field === '' && record.length === 0, 'the last record ends with CRLF');
  return records;
}
