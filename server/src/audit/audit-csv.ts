import type { AuditEvent } from '../contract/audit.js';

/** The export's columns, in order; the header line names them. */
const COLUMNS = ['at', 'actor_type', 'actor_id', 'actor_name', 'action', 'target_type', 'target_id', 'target_name', 'address', 'details'] as const;

export const AUDIT_CSV_HEADER = `${COLUMNS.join(',')}\r\n`;

/** One event as a CSV line (RFC 4180, CRLF). */
export function auditCsvLine(event: AuditEvent): string {
  return `${COLUMNS.map((column) => csvCell(column === 'details' ? JSON.stringify(event.details) : event[column])).join(',')}\r\n`;
}

/**
 * A cell a spreadsheet shows as text. Names, targets and details can hold what a caller
 * typed (a failed sign-in's name), and a spreadsheet runs a cell that starts with = + - @
 * (or a tab or carriage return before one) as a formula: such a cell gets a leading
 * apostrophe. Then quoting, for commas, quotes and line breaks.
 */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
