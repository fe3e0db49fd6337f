// PostgreSQL's binary wire formats that parameters are sent in where its text input would cost more than
// building them here (the server reads them without parsing a literal).

/**
 * A one-dimensional array in the binary format (array_send's): dimensions, a NULL flag, the element
 * type, then each element's length and bytes (-1 for NULL). An empty array has no dimensions.
 */
export function binaryArray(elementType: number, elements: (Uint8Array | null)[]): Buffer {
  const header = Buffer.allocUnsafe(20);
  header.writeInt32BE(elements.length ? 1 : 0, 0);
  header.writeInt32BE(elements.includes(null) ? 1 : 0, 4);
  header.writeUInt32BE(elementType, 8);
  header.writeInt32BE(elements.length, 12);
  header.writeInt32BE(1, 16); // lower bound
  const chunks: Uint8Array[] = [elements.length ? header : header.subarray(0, 12)];
  for (const element of elements) {
    const length = Buffer.allocUnsafe(4);
    length.writeInt32BE(element ? element.byteLength : -1);
    chunks.push(length);
    if (element) chunks.push(element);
  }
  return Buffer.concat(chunks);
}

const TEXT_OID = 25;
const BYTEA_OID = 17;

/**
 * A bytea[] parameter in the binary format: many binary values (a batch's raw messages) in one
 * parameter, read by the server without decoding hex; the parameter must be read as `::bytea[]`.
 */
export function binaryByteaArray(values: Uint8Array[]): Buffer {
  return binaryArray(BYTEA_OID, values);
}

/**
 * A text[] parameter in the binary format: the UTF-8 bytes of each string (or the bytes given, which
 * must be valid UTF-8 without NUL), which the server stores without parsing an array literal (and the
 * client builds without escaping one). For the long texts of a batch (message bodies); the parameter
 * must be read as `::text[]`.
 */
export function binaryTextArray(texts: (string | Uint8Array | null)[]): Buffer {
  return binaryArray(
    TEXT_OID,
    texts.map((text) => (text === null ? null : typeof text === 'string' ? Buffer.from(text) : text)),
  );
}

/** The binary COPY format's signature, which its 19-byte header starts with. */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * The rows of COPY … TO STDOUT (FORMAT binary): a header (signature, flags, extension), then per row the
 * number of fields and each field's length and bytes (-1 for NULL), and -1 where the rows end. Each value
 * is a view into `data`.
 */
export function binaryCopyRows(data: Buffer): (Buffer | null)[][] {
  if (data.length < 19 || !data.subarray(0, 11).equals(COPY_SIGNATURE))
    throw new Error('not binary COPY data');
  let at = 19 + data.readUInt32BE(15);
  const rows: (Buffer | null)[][] = [];
  for (let fields = data.readInt16BE(at); fields !== -1; fields = data.readInt16BE(at)) {
    at += 2;
    const row: (Buffer | null)[] = [];
    for (let f = 0; f < fields; f++) {
      const length = data.readInt32BE(at);
      at += 4;
      if (length < 0) row.push(null);
      else {
        if (at + length > data.length) throw new Error('binary COPY data ends inside a value');
        row.push(data.subarray(at, at + length));
        at += length;
      }
    }
    rows.push(row);
  }
  return rows;
}
