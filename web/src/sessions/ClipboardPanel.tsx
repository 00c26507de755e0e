import { useState } from 'react';
import type { ClipboardSync } from '../hooks/useClipboardSync';

interface Props {
  sync: ClipboardSync;
  toSession: boolean;
  fromSession: boolean;
}

/**
 * The way through where the browser keeps the page from the clipboard: text to type or
 * paste here and send, and the session's last copy to select and copy by hand.
 */
export function ClipboardPanel({ sync, toSession, fromSession }: Props) {
  const [draft, setDraft] = useState('');
  const [sent, setSent] = useState(false);
  const [readProblem, setReadProblem] = useState<string | null>(null);

  const sendDraft = () => {
    sync.send(draft);
    setSent(true);
  };

  const pasteIn = async () => {
    setReadProblem(null);
    const text = await sync.pasteFromClipboard();
    if (text === null) setReadProblem('The browser did not let Sortie read your clipboard. Paste into the box above instead.');
    else {
      setDraft(text);
      setSent(true);
    }
  };

  return (
    <div className="drawer__body" data-testid="clipboard-panel">
      {toSession && (
        <section className="drawer__section">
          <h3 className="drawer__heading">To the session</h3>
          <p className="drawer__hint">
            {sync.readGranted
              ? 'What you copy on your computer reaches the session when you return to the desktop.'
              : 'Paste text here and send it; then paste in the app as usual.'}
          </p>
          <textarea
            className="drawer__text"
            rows={5}
            value={draft}
            onChange={(e) => {
              setDraft(e.target.value);
              setSent(false);
            }}
            placeholder="Text for the session's clipboard"
            data-testid="clipboard-input"
          />
          <div className="drawer__row">
            <button type="button" className="btn btn--primary" onClick={sendDraft} disabled={draft === ''} data-testid="clipboard-send">
              Send to session
            </button>
            {'clipboard' in navigator && (
              <button type="button" className="btn btn--dark" onClick={() => void pasteIn()} data-testid="clipboard-paste">
                Send my clipboard
              </button>
            )}
            {sent && <span className="drawer__ok" role="status">Sent</span>}
          </div>
          {readProblem && <p className="drawer__error">{readProblem}</p>}
        </section>
      )}
      {fromSession && (
        <section className="drawer__section">
          <h3 className="drawer__heading">From the session</h3>
          <p className="drawer__hint">
            {sync.writeRefused
              ? 'The browser did not let Sortie put this on your clipboard. Select it and copy it (Ctrl+C).'
              : 'What you copy in the app lands on your clipboard; the last copy is here too.'}
          </p>
          <textarea className="drawer__text" rows={5} readOnly value={sync.fromSessionText} placeholder="Nothing copied yet" data-testid="clipboard-output" />
        </section>
      )}
      {!toSession && !fromSession && <p className="drawer__hint">This app does not share a clipboard.</p>}
    </div>
  );
}
