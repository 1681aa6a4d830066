import { MigrationStreamError } from './errors.js';

// libvirt's QEMU save image (`virsh save`, virDomainSave): a little-endian header, the domain XML (and an
// optional cookie), then QEMU's plain migration stream. Layout as libvirt 9.0 writes it (qemu-notes §8):
//   "LibvirtQemudSave"  u32 version (2)  u32 data_len  u32 was_running  u32 compressed  u32 cookie_offset
//   u32 unused[14]  — 92 bytes — then data_len bytes: XML, NUL, [cookie XML, NUL], zero padding; "QEVM"…

export const LIBVIRT_SAVE_MAGIC = 'LibvirtQemudSave';
/** Bytes before the XML: the magic and 19 u32 fields. */
export const LIBVIRT_SAVE_HEADER_BYTES = 92;
const MAGIC = new TextEncoder().encode(LIBVIRT_SAVE_MAGIC);
const VERSION = 2;
// libvirt rejects absurd headers too; the XML of a real domain is a few KiB (plus 64 KiB padding).
const MAX_DATA_LEN = 16 * 1024 * 1024;

export interface LibvirtSaveHeader {
  readonly version: number;
  /** Whether libvirt resumes the guest after restoring (0 = it stays paused). */
  readonly wasRunning: boolean;
  /** libvirt's compression of the stream; only 0 (raw) leaves a plain migration stream behind. */
  readonly compressed: number;
  /** The domain XML stored in the image. */
  readonly xml: string;
  /** The cookie XML (CPU definition etc.), if any. */
  readonly cookie: string | undefined;
  /** Where the migration stream starts in the file: 92 + data_len. */
  readonly streamOffset: number;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((byte, i) => bytes[i] === byte);
}

const cString = (bytes: Uint8Array, start: number): string => {
  const end = bytes.indexOf(0, start);
  return new TextDecoder().decode(bytes.subarray(start, end < 0 ? bytes.length : end));
};

/** Whether `bytes` (the first bytes of a file) begin a libvirt save image. */
export function isLibvirtSaveImage(bytes: Uint8Array): boolean {
  return startsWithMagic(bytes);
}

/** The data length of a header whose first 92 bytes are in `head` (to know how much more to read). */
function headerFields(head: Uint8Array) {
  if (!startsWithMagic(head)) throw new MigrationStreamError('bad-magic', 0, 'not a libvirt save image');
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = view.getUint32(16, true);
  const dataLen = view.getUint32(20, true);
  if (version !== 1 && version !== VERSION)
    throw new MigrationStreamError('bad-version', 16, `libvirt save image version ${version}`);
  if (dataLen > MAX_DATA_LEN)
    throw new MigrationStreamError('absurd-size', 20, `libvirt save image XML length ${dataLen}`);
  return {
    version,
    dataLen,
    wasRunning: view.getUint32(24, true) !== 0,
    compressed: view.getUint32(28, true),
    cookieOffset: view.getUint32(32, true),
  };
}

/** Parses the header and XML; `bytes` must hold at least the first 92 + data_len bytes. */
export function parseLibvirtSaveHeader(bytes: Uint8Array): LibvirtSaveHeader {
  if (bytes.length < LIBVIRT_SAVE_HEADER_BYTES)
    throw new MigrationStreamError('truncated', bytes.length, 'libvirt save header');
  const fields = headerFields(bytes);
  const streamOffset = LIBVIRT_SAVE_HEADER_BYTES + fields.dataLen;
  if (bytes.length < streamOffset)
    throw new MigrationStreamError('truncated', bytes.length, 'libvirt save header XML');
  const data = bytes.subarray(LIBVIRT_SAVE_HEADER_BYTES, streamOffset);
  return {
    version: fields.version,
    wasRunning: fields.wasRunning,
    compressed: fields.compressed,
    xml: cString(data, 0),
    cookie: fields.version >= 2 && fields.cookieOffset > 0 ? cString(data, fields.cookieOffset) : undefined,
    streamOffset,
  };
}

export interface LibvirtSaveHeaderInput {
  readonly xml: string;
  /** Resume after `virsh restore` (default true). */
  readonly wasRunning?: boolean;
  /** Zero bytes after the XML, so `virsh save-image-define` can grow it in place (libvirt pads 64 KiB). */
  readonly padding?: number;
}

/** The header + XML to put in front of a plain migration stream so that libvirt restores it. */
export function buildLibvirtSaveHeader(input: LibvirtSaveHeaderInput): Uint8Array {
  const xml = new TextEncoder().encode(input.xml);
  const dataLen = xml.length + 1 + (input.padding ?? 0);
  const out = new Uint8Array(LIBVIRT_SAVE_HEADER_BYTES + dataLen);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(16, VERSION, true);
  view.setUint32(20, dataLen, true);
  view.setUint32(24, input.wasRunning === false ? 0 : 1, true);
  // compressed = 0 (raw), cookie_offset = 0 (no cookie: libvirt then checks the CPU from the XML alone)
  out.set(xml, LIBVIRT_SAVE_HEADER_BYTES);
  return out;
}

/**
 * The migration stream inside a libvirt save image, as chunks (views into the source's chunks). A source
 * that does not start with the libvirt magic passes through unchanged, so a reader can take either file.
 * `onHeader` sees the parsed header. A compressed image is refused: its stream is not QEMU's.
 */
export async function* stripLibvirtSaveHeader(
  source: AsyncIterable<Uint8Array>,
  onHeader?: (header: LibvirtSaveHeader) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  let head = new Uint8Array(0);
  let need = LIBVIRT_SAVE_HEADER_BYTES;
  let streamOffset: number | undefined;
  for await (const chunk of source) {
    if (streamOffset !== undefined) {
      yield chunk;
      continue;
    }
    const joined = new Uint8Array(head.length + chunk.length);
    joined.set(head);
    joined.set(chunk, head.length);
    head = joined;
    if (head.length >= MAGIC.length && !startsWithMagic(head)) {
      streamOffset = 0; // a plain migration stream
      yield head;
      continue;
    }
    if (head.length < need) continue;
    need = LIBVIRT_SAVE_HEADER_BYTES + headerFields(head).dataLen;
    if (head.length < need) continue;
    const header = parseLibvirtSaveHeader(head);
    if (header.compressed !== 0)
      throw new MigrationStreamError(
        'unknown-flags',
        28,
        `libvirt save image compressed (${header.compressed})`,
      );
    onHeader?.(header);
    streamOffset = header.streamOffset;
    if (head.length > streamOffset) yield head.subarray(streamOffset);
  }
  if (streamOffset !== undefined) return;
  // Ended inside the header, or shorter than the magic: pass on what is not libvirt's, for the reader to judge.
  if (!MAGIC.subarray(0, head.length).every((byte, i) => head[i] === byte)) {
    yield head;
    return;
  }
  throw new MigrationStreamError('truncated', head.length, 'libvirt save header');
}
