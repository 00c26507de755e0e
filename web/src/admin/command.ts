/**
 * A command line in one text field: arguments split on spaces, with shell-style
 * quoting ('single', "double", backslash) for arguments that hold spaces or quotes.
 * No variables, globs or pipes: the argv goes to the container as it is.
 */

export type ParsedCommand = { ok: true; argv: string[] } | { ok: false; error: string };

export function parseCommand(text: string): ParsedCommand {
  const argv: string[] = [];
  let current = '';
  let inToken = false;
  let quote: '"' | "'" | null = null;

  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
      continue;
    }
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === undefined) return { ok: false, error: 'The command ends with a lone backslash.' };
      // Inside double quotes a backslash only escapes what would otherwise end or bend the quote.
      if (quote === '"' && next !== '"' && next !== '\\') current += ch;
      current += next;
      inToken = true;
      i++;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = null;
      else current += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inToken) argv.push(current);
      current = '';
      inToken = false;
      continue;
    }
    current += ch;
    inToken = true;
  }
  if (quote) return { ok: false, error: `The command has an unclosed ${quote === '"' ? 'double' : 'single'} quote.` };
  if (inToken) argv.push(current);
  return { ok: true, argv };
}

const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function formatCommand(argv: readonly string[] | undefined): string {
  return (argv ?? []).map((arg) => (PLAIN.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
