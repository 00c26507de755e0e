import type { User } from '../contract';

export type { AuthSource, Role, User } from '../contract';

export interface AuthConfig {
  enabled: boolean;
  local: boolean;
  oidc: { enabled: boolean; name: string };
}

export interface SignInResult {
  user: User;
  access_token: string;
  expires_at: string;
}

export function displayName(user: Pick<User, 'display_name' | 'username'>): string {
  return user.display_name?.trim() || user.username;
}
