export type Role = 'admin' | 'user';
export type AuthSource = 'local' | 'oidc';

export interface User {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  auth_source: AuthSource;
  disabled: boolean;
  created_at: string;
}

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
