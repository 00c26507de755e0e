import { useState } from 'react';

interface Props {
  id: string;
  value: string;
  onChange: (value: string) => void;
  invalid?: boolean;
  testId: string;
}

/** A new password an admin types for someone else: visible on request, never autofilled. */
export function PasswordInput({ id, value, onChange, invalid, testId }: Props) {
  const [shown, setShown] = useState(false);
  return (
    <div className="password-input">
      <input
        id={id}
        className="input"
        type={shown ? 'text' : 'password'}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={invalid || undefined}
        autoComplete="new-password"
        spellCheck={false}
        data-testid={testId}
      />
      <button type="button" className="password-input__toggle" onClick={() => setShown((s) => !s)} aria-pressed={shown}>
        {shown ? 'Hide' : 'Show'}
      </button>
    </div>
  );
}
