import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into JSON messages, one per line (QMP ends each with CRLF). Chunks may split
 * anywhere, even inside a UTF-8 character. Lines that are not JSON objects are passed to `onGarbage`.
 */
export function createJsonLineParser(
  onMessage: (message: Record<string, unknown>) => void,
  onGarbage: (line: string) => void = () => {},
): (chunk: Buffer | string) => void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  return (chunk) => {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== '') parseLine(line, onMessage, onGarbage);
      newline = pending.indexOf('\n');
    }
  };
}

function parseLine(
  line: string,
  onMessage: (message: Record<string, unknown>) => void,
  onGarbage: (line: string) => void,
): void {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    onGarbage(line);
    return;
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    onMessage(value as Record<string, unknown>);
  } else {
    onGarbage(line);
  }
}
