import { Spinner } from './Spinner';

/** Stands where a list will be while it loads: "Loading apps…". */
export function Loading({ what, compact = false }: { what: string; compact?: boolean }) {
  return (
    <div className={`placeholder${compact ? ' placeholder--compact' : ''}`}>
      <Spinner label={`Loading ${what}`} />
      <span>{`Loading ${what}…`}</span>
    </div>
  );
}
