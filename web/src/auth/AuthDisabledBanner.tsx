import { Banner } from '../ui/Banner';

export function AuthDisabledBanner() {
  return (
    <Banner tone="warning" testId="auth-disabled-banner">
      Sign-in is switched off: anyone who can reach Sortie can use every app and every session.
    </Banner>
  );
}
