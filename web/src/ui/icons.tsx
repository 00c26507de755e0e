import type { ReactNode } from 'react';

/** The 20×20 line icons that sit in buttons; decorative, so hidden from screen readers. */
function ButtonIcon({ children }: { children: ReactNode }) {
  return (
    <svg className="btn__icon" viewBox="0 0 20 20" aria-hidden="true">
      {children}
    </svg>
  );
}

/** A rounded 1.8-wide stroke, the look of most button icons. */
function Line({ d }: { d: string }) {
  return <path d={d} fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" />;
}

export function PlusIcon() {
  return (
    <ButtonIcon>
      <path d="M10 4v12M4 10h12" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
    </ButtonIcon>
  );
}

export function SignOutIcon() {
  return (
    <ButtonIcon>
      <Line d="M8 4H5a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h3M12 6.5 15.5 10 12 13.5M15.5 10H8" />
    </ButtonIcon>
  );
}

export function KeyIcon() {
  return (
    <ButtonIcon>
      <circle cx="7" cy="10" r="3.5" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <path d="M10.5 10H17M14.5 10v3M17 10v2.5" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </ButtonIcon>
  );
}

export function ExternalLinkIcon() {
  return (
    <ButtonIcon>
      <Line d="M11 4h5v5M16 4l-7 7M14 12v3.5a.5.5 0 0 1-.5.5h-9a.5.5 0 0 1-.5-.5v-9a.5.5 0 0 1 .5-.5H8" />
    </ButtonIcon>
  );
}

export function ReconnectIcon() {
  return (
    <ButtonIcon>
      <Line d="M16 10a6 6 0 1 1-1.76-4.24M16 3.5v3h-3" />
    </ButtonIcon>
  );
}

export function FullscreenIcon({ exit }: { exit: boolean }) {
  return (
    <ButtonIcon>
      <Line d={exit ? 'M8 3v5H3M12 3v5h5M8 17v-5H3M12 17v-5h5' : 'M3 8V3h5M17 8V3h-5M3 12v5h5M17 12v5h-5'} />
    </ButtonIcon>
  );
}

export function PowerIcon() {
  return (
    <ButtonIcon>
      <path d="M10 3v7M6.1 5.6a6 6 0 1 0 7.8 0" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </ButtonIcon>
  );
}

/** The × of close and dismiss buttons; its size comes from the button's CSS. */
export function CloseIcon() {
  return (
    <svg viewBox="0 0 20 20" aria-hidden="true">
      <path stroke="currentColor" strokeWidth="2" strokeLinecap="round" d="M5 5l10 10M15 5 5 15" />
    </svg>
  );
}

export function ClipboardIcon() {
  return (
    <ButtonIcon>
      <Line d="M7.5 4H6a1 1 0 0 0-1 1v11a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1V5a1 1 0 0 0-1-1h-1.5M7.5 3h5v2.5h-5zM7.5 10h5M7.5 13h3" />
    </ButtonIcon>
  );
}

export function FolderIcon() {
  return (
    <ButtonIcon>
      <Line d="M3 6a1 1 0 0 1 1-1h4l1.5 2H16a1 1 0 0 1 1 1v7a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z" />
    </ButtonIcon>
  );
}
