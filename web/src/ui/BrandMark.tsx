export function BrandMark({ className = 'brand__mark' }: { className?: string }) {
  return (
    <svg className={className} viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="currentColor" />
      <path d="M10 22l12-6-12-6v4.5l6 1.5-6 1.5z" fill="#fff" />
    </svg>
  );
}
