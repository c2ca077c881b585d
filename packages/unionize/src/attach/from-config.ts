import type { Logger } from 'pino';
import type { DhcpConfig, NetworkConfig } from '../config.js';
import { DhcpClients } from './dhcp-client.js';
import { NativeAttacher, type Attacher } from './native.js';
import { PipeworkAttacher } from './pipework.js';

/** How often the daemon stops DHCP clients whose container went away without a DELETE (it exited, or was removed by hand). */
export const DHCP_REAP_INTERVAL_MS = 30_000;

export interface ConfiguredAttacher {
  attacher: Attacher;
  /** Start-up check; throws an Error whose message is the one line to print. */
  preflight(): Promise<void>;
  /** Reap now, then every `intervalMs`; returns the function that stops the timer. */
  startReaper(log: Logger, intervalMs?: number): () => void;
}

/** The attach backend named by `[network] attach`, with DHCP addressing for the native one. */
export function attacherFromConfig(network: NetworkConfig, dhcp: DhcpConfig, dockerSocket: string): ConfiguredAttacher {
  if (network.attach === 'pipework') {
    const attacher = new PipeworkAttacher({
      pipework: network.pipework!,
      bridge: network.bridge,
      gateway: network.gateway,
      // pipework finds the container with `docker inspect`.
      env: { DOCKER_HOST: `unix://${dockerSocket}` },
    });
    return { attacher, preflight: () => attacher.preflight(), startReaper: () => () => {} };
  }
  const clients = new DhcpClients({ stateDir: dhcp.stateDir, dhclient: dhcp.client, script: dhcp.script, release: dhcp.release });
  const attacher = new NativeAttacher({ bridge: network.bridge, gateway: network.gateway, dhcp: clients, leaseWaitMs: dhcp.leaseWaitMs });
  return {
    attacher,
    preflight: () => attacher.preflight(),
    startReaper(log, intervalMs = DHCP_REAP_INTERVAL_MS) {
      const reap = async () => {
        const reaped = await clients.reap((name, error) => log.warn({ container: name, err: error }, 'DHCPv6 client not reaped'));
        if (reaped.length > 0) log.info({ containers: reaped }, 'DHCPv6 clients of gone containers stopped');
      };
      void reap();
      const timer = setInterval(() => void reap(), intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
