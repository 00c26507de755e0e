interface Props {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  testId?: string;
}

/** An on/off checkbox drawn as a sliding switch. */
export function Switch({ label, checked, onChange, testId }: Props) {
  return (
    <label className="switch">
      <input type="checkbox" role="switch" checked={checked} onChange={(e) => onChange(e.target.checked)} data-testid={testId} />
      <span className="switch__track" aria-hidden="true">
        <span className="switch__thumb" />
      </span>
      {label}
    </label>
  );
}
