// Mutual authentication with a per-job secret: each side proves it holds the secret over the other's fresh nonce.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Name of the variable that carries the job secret to agents (through srun's or ssh's environment, never argv). */
export const SECRET_ENV = 'SLURMPOOL_SECRET';
export const NONCE_BYTES = 32;

/** A fresh secret for one job: 32 random bytes, hex. */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/**
 * Who proves: the coordinator and an agent on the job's main links; a relay parent (an agent serving
 * shared data) and a relay child (the agent fetching it) between agents. A proof for one role is
 * worthless for another, so a relay connection can never pass for a coordinator's.
 */
export type AuthRole = 'coordinator' | 'agent' | 'relay-parent' | 'relay-child';

/** The proof one side gives: HMAC-SHA256 over a role label and both nonces, so proofs cannot be replayed or reflected. */
export function proof(secret: string, role: AuthRole, agentNonce: Uint8Array, coordNonce: Uint8Array): Buffer {
  return createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`slurmpool-v1-${role}`)
    .update(agentNonce)
    .update(coordNonce)
    .digest();
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(got: unknown, expected: Buffer): boolean {
  if (!(got instanceof Uint8Array) || got.length !== expected.length) return false;
  return timingSafeEqual(got, expected);
}

/**
 * A tag for the secret, safe to show anyone: agents that joined with the same secret can prove
 * themselves to each other (and so relay shared data to each other); HMAC, so the tag says nothing
 * of the secret.
 */
export function secretGroup(secret: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update('slurmpool-v1-relay-group').digest('hex').slice(0, 16);
}
