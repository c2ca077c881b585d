import { LABELS, containerNameOf, isDhcpAddress, macOf, type ContainerView, type CreateContainerRequest, type PoolSpec } from '@unionize/protocol';
import type { Profile } from '../profiles/profiles.js';
import type { ClientRecord } from '../store/types.js';

/**
 * The addresses the agent lets reach the client's container: its own lease's,
 * and those of its device's other live leases (a second IA_NA, an IA_TA),
 * which hold no container of their own (one device, one container).
 */
export function deviceAddressesOf(client: ClientRecord, siblings: readonly ClientRecord[] = []): string[] {
  const addresses = [client.address, ...siblings.map((s) => s.address)].filter((a) => a !== '');
  return [...new Set(addresses.map((a) => a.toLowerCase()))];
}

/** The agent's view allows exactly these device addresses (true when the agent does not filter). */
export function allowsAddresses(view: ContainerView, addresses: readonly string[]): boolean {
  if (view.deviceAddresses === undefined) return true;
  const want = addresses.map((a) => a.toLowerCase()).sort();
  const have = view.deviceAddresses.map((a) => a.toLowerCase()).sort();
  return want.length === have.length && want.every((a, i) => a === have[i]);
}

/**
 * What the orchestrator asks an agent for: the client's container, made from
 * its profile, named and MAC'd from the client key (so a retried create finds
 * the first one), labelled so the reconciler can tie it back to its client.
 * `address` is `ADDRESS/LEN` (static addressing) or `dhcp`. Sent again when
 * the device's address changes: the agent then lets the new one in.
 * `pooled`: the agent keeps the profile's warm pool (it said so), so the
 * request names it (an older agent refuses the key).
 */
export function containerRequest(client: ClientRecord, profile: Profile, address: string, deviceAddresses: string[] = deviceAddressesOf(client), pooled = false): CreateContainerRequest {
  const containerAddress = isDhcpAddress(address) ? '' : address.split('/')[0]!;
  return {
    name: containerNameOf(client.id),
    image: profile.image,
    mac: macOf(client.id),
    address,
    deviceAddresses,
    ...(profile.command ? { command: profile.command } : {}),
    ...(profile.memoryBytes ? { memoryBytes: profile.memoryBytes } : {}),
    ...(profile.nanoCpus ? { nanoCpus: profile.nanoCpus } : {}),
    ...(pooled && profile.pool > 0 ? { pool: profile.name } : {}),
    labels: {
      [LABELS.clientId]: client.id,
      [LABELS.server]: client.server,
      [LABELS.duid]: client.duid,
      [LABELS.iaid]: client.iaid,
      [LABELS.deviceAddress]: client.address,
      [LABELS.profile]: profile.name,
    },
    env: { ...profile.env, ...deviceEnv(client, profile, containerAddress) },
  };
}

/** What a container is told of its device (in its environment, or, claimed from a pool, in a file): these win over a profile's env. */
function deviceEnv(client: ClientRecord, profile: Profile, containerAddress: string): Record<(typeof DEVICE_ENV)[number], string> {
  return {
    CLIENT_ID: client.id,
    DEVICE_DUID: client.duid,
    DEVICE_IAID: client.iaid,
    DEVICE_ADDRESS: client.address,
    DEVICE_HOSTNAME: client.hostname ?? '',
    CONTAINER_ADDRESS: containerAddress,
    PROFILE: profile.name,
  };
}
const DEVICE_ENV = ['CLIENT_ID', 'DEVICE_DUID', 'DEVICE_IAID', 'DEVICE_ADDRESS', 'DEVICE_HOSTNAME', 'CONTAINER_ADDRESS', 'PROFILE'] as const;

/**
 * How an agent makes the profile's pool members (PUT /v1/pools): what
 * containerRequest would ask for, but the device: its env is the profile's
 * without the keys deviceEnv sets, so every device's request fits it.
 */
export function poolSpecOf(profile: Profile, size: number): PoolSpec {
  const env = Object.fromEntries(Object.entries(profile.env).filter(([key]) => !(DEVICE_ENV as readonly string[]).includes(key)));
  return {
    name: profile.name,
    size,
    image: profile.image,
    env,
    ...(profile.command ? { command: profile.command } : {}),
    ...(profile.memoryBytes ? { memoryBytes: profile.memoryBytes } : {}),
    ...(profile.nanoCpus ? { nanoCpus: profile.nanoCpus } : {}),
  };
}
