import type { ReactNode } from 'react';
import './table.css';

/** `data-table` for the admin lists, `sessions` for a person's own sessions (see table.css). */
export type TableLook = 'data-table' | 'sessions';

interface Props {
  look: TableLook;
  /** Column headings; a last, unlabelled column holds each row's buttons. */
  columns: readonly string[];
  /** The rows. */
  children: ReactNode;
}

export function Table({ look, columns, children }: Props) {
  return (
    <div className="table-wrap">
      <table className={`table ${look}`}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
