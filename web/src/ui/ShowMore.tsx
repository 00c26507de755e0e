import { Spinner } from './Spinner';

/** Loads the next page of a list; shown only while the server has more. */
export function ShowMore({ hasMore, loading, onClick, testId }: { hasMore: boolean; loading: boolean; onClick: () => void; testId: string }) {
  if (!hasMore) return null;
  return (
    <div className="show-more">
      <button type="button" className="btn btn--secondary" onClick={onClick} disabled={loading} data-testid={testId}>
        {loading && <Spinner size="sm" />} Show more
      </button>
    </div>
  );
}
