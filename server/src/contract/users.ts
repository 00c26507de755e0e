export const ROLES = ['admin', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** `oidc` for people who came through the identity provider, `local` for password accounts. */
export type AuthSource = 'local' | 'oidc';

/** A user as the API shows it: never the password hash. */
export interface User {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  auth_source: AuthSource;
  disabled: boolean;
  created_at: string;
}

/** Usernames an admin may give: 1-64 letters, digits or . _ @ + - */
export const USERNAME_PATTERN = /^[\w.@+-]{1,64}$/;

export const DISPLAY_NAME_MAX_LENGTH = 128;

/** Passwords Sortie accepts are at least this long. */
export const MIN_PASSWORD_LENGTH = 12;
