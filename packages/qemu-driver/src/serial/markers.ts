// Cutting one command's output out of an interactive shell session. The shell echoes what we type, so the
// typed markers contain '' (empty quotes) that the shell removes when it runs echo: only the printed marker
// reads __S<tag>__ / __E<tag>__. Long typed lines may wrap, but the quotes stay, so the echo never matches.

/** The line to type: start marker, the command, end marker followed by the command's exit status. */
export function commandLine(command: string, tag: string): string {
  let body = command.trim();
  while (body.endsWith(';') && !body.endsWith(';;')) body = body.slice(0, -1).trimEnd();
  // `CMD &; echo` is a syntax error: a trailing & already separates commands.
  const separator = body.endsWith('&') && !body.endsWith('&&') ? ' ' : '; ';
  return `echo __S${tag}''__; ${body}${separator}echo __E${tag}''__$?\n`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface FoundResult {
  readonly output: string;
  readonly status: number;
  /** Index just after the end marker's line in the searched text. */
  readonly end: number;
}

/**
 * Finds the output of the command tagged `tag` in cleaned console text (no CR, no ANSI). Output that does
 * not end in a newline is fine: the end marker may follow it on the same line. The newline after the exit
 * status is required so a status split across chunks ("__E1__1" + "27") is not read too early.
 */
export function findCommandResult(text: string, tag: string): FoundResult | undefined {
  const t = escapeRegExp(tag);
  const match = new RegExp(`__S${t}__\\n([\\s\\S]*?)__E${t}__(\\d+)\\n`).exec(text);
  if (match === null) return undefined;
  const raw = match[1] ?? '';
  return {
    output: raw.endsWith('\n') ? raw.slice(0, -1) : raw,
    status: Number(match[2]),
    end: match.index + match[0].length,
  };
}
