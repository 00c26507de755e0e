import { useState, type CSSProperties } from 'react';
import { initial } from './format';

interface Props {
  name: string;
  src: string;
  size?: 'md' | 'lg';
}

/** Falls back to a coloured initial so a missing or broken icon never leaves a hole. */
export function AppIcon({ name, src, size = 'md' }: Props) {
  const [failedSrc, setFailedSrc] = useState<string | null>(null);
  const showImage = Boolean(src) && failedSrc !== src;

  if (showImage) {
    return (
      <img
        className={`app-icon app-icon--${size}`}
        src={src}
        alt=""
        loading="lazy"
        decoding="async"
        onError={() => setFailedSrc(src)}
      />
    );
  }
  return (
    <span className={`app-icon app-icon--${size} app-icon--letter`} style={{ '--hue': hueFor(name) } as CSSProperties} aria-hidden="true">
      {initial(name)}
    </span>
  );
}

function hueFor(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return Math.abs(hash) % 360;
}
