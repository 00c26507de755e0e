import { useEffect, useState } from 'react';
import { errorMessage } from '../api/http';
import { navigate, paths } from '../hooks/useHashRoute';
import { Panel } from '../ui/Panel';
import { Spinner } from '../ui/Spinner';
import { redeemShare } from './ShareApi';

/**
 * `#/share/{token}`: a share link opened by someone signed in (the app sends everyone else
 * to sign in first and back here). The link becomes a share of their own, then the viewer opens.
 */
export function ShareRedeem({ token }: { token: string }) {
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    redeemShare(token)
      .then((redeemed) => {
        if (current) navigate(paths.viewer(redeemed.session_id), { replace: true });
      })
      .catch((err: unknown) => {
        if (current) setProblem(errorMessage(err));
      });
    return () => {
      current = false;
    };
  }, [token]);

  if (problem === null) {
    return (
      <div className="stage-center">
        <Spinner size="lg" label="Opening the shared session" />
      </div>
    );
  }
  return (
    <Panel tone="error" title="This share link does not open a session">
      <p className="panel__text" data-testid="share-redeem-error">
        {problem}
      </p>
      <div className="panel__actions">
        <a className="btn btn--primary" href={paths.sessions}>
          My sessions
        </a>
      </div>
    </Panel>
  );
}
