import { createHmac, randomBytes } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../errors.js';

export interface SignInLimitSettings {
  /** Failed sign-ins for one account (within `lockoutMinutes`) before it is locked. */
  maxFailuresPerAccount: number;
  /** Failed sign-ins from one client address (within `lockoutMinutes`) before it is locked. */
  maxFailuresPerAddress: number;
  /** How long failures are counted, and how long a lock lasts. */
  lockoutMinutes: number;
}

/**
 * Names that belong to no account share this many counters. Every name gets a counter (so a
 * lockout does not reveal whether the account exists), yet cycling through invented names
 * cannot grow the account store past the number of accounts plus this.
 */
const UNKNOWN_NAME_BUCKETS = 4096;

/** One sign-in attempt that has been let through and counted; say how it ended. */
export interface SignInAttempt {
  /** The password was right: the account's failures are forgotten and the attempt does not count against the address. */
  succeeded(): Promise<void>;
}

/**
 * Brute-force protection for password sign-in: failures are counted per account and per
 * client address, and either reaching its limit refuses further attempts (even with the
 * right password) until the lock ends.
 *
 * An attempt is counted before its password is checked, so a burst of parallel requests
 * cannot all slip in under the limit, and a success takes its count back. The account is
 * counted first: an address counter is only created by an attempt that goes on to pay for
 * a full argon2 check, which bounds how fast an attacker with many addresses can add keys
 * (see README, "Sign-in limits").
 */
export class SignInLimits {
  private readonly byAccount: RateLimiterMemory;
  private readonly byAddress: RateLimiterMemory;
  /** Keys the bucket of unknown names, so nobody can work out offline which names collide. */
  private readonly bucketKey = randomBytes(32);

  constructor(settings: SignInLimitSettings) {
    const seconds = Math.max(1, Math.round(settings.lockoutMinutes * 60));
    this.byAccount = new RateLimiterMemory({ keyPrefix: 'account', points: settings.maxFailuresPerAccount, duration: seconds, blockDuration: seconds });
    this.byAddress = new RateLimiterMemory({ keyPrefix: 'address', points: settings.maxFailuresPerAddress, duration: seconds, blockDuration: seconds });
  }

  /** The counter for an existing account (by id, so renames and letter case do not matter). */
  accountKey(userId: string): string {
    return `user:${userId}`;
  }

  /** The counter for a name no account has. */
  unknownNameKey(username: string): string {
    const digest = createHmac('sha256', this.bucketKey).update(username).digest();
    return `name:${digest.readUInt32BE(0) % UNKNOWN_NAME_BUCKETS}`;
  }

  /**
   * Counts one attempt against the account and the address, or throws TooManyRequestsError
   * when either is locked.
   */
  async attempt(accountKey: string, clientAddress: string): Promise<SignInAttempt> {
    const address = addressKey(clientAddress);
    const accountRefused = await refusal(this.byAccount.consume(accountKey));
    if (accountRefused) {
      throw new TooManyRequestsError(`Too many failed sign-in attempts for this account; try again in ${seconds(accountRefused)} s`, seconds(accountRefused));
    }
    const addressRefused = await refusal(this.byAddress.consume(address));
    if (addressRefused) {
      // Refused before the password was checked: this attempt says nothing about the account.
      await this.byAccount.reward(accountKey);
      throw new TooManyRequestsError(`Too many failed sign-in attempts from your network address; try again in ${seconds(addressRefused)} s`, seconds(addressRefused));
    }
    return {
      succeeded: async () => {
        await this.byAccount.delete(accountKey);
        await this.byAddress.reward(address);
      },
    };
  }
}

/** The rejection of a consume, or undefined when it went through. Other errors propagate. */
async function refusal(consumed: Promise<RateLimiterRes>): Promise<RateLimiterRes | undefined> {
  try {
    await consumed;
    return undefined;
  } catch (err) {
    if (err instanceof RateLimiterRes) return err;
    throw err;
  }
}

function seconds(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

/**
 * One counter per IPv4 address, and per /64 for IPv6: a single IPv6 host usually holds a
 * whole /64, so counting single IPv6 addresses would give it billions of fresh counters.
 */
export function addressKey(clientAddress: string): string {
  if (!ipaddr.isValid(clientAddress)) return clientAddress;
  const parsed = ipaddr.process(clientAddress);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
}
