// mDNS/DNS-SD: `_cloudlet._tcp` with the API's port, so `cloudlet discover` finds this server.
import { hostname } from 'node:os';
import { MDNS_SERVICE_TYPE } from '@cloudlet/core';
import Bonjour from 'bonjour-service';

export interface Advertisement {
  readonly name: string;
  stop(): Promise<void>;
}

export function advertise(options: {
  port: number;
  /** The address the API listens on, published as `address` unless a wildcard (then: the host's addresses). */
  host: string;
  name?: string;
  auth: boolean;
  version: string;
}): Advertisement {
  const bonjour = new Bonjour();
  const name = options.name ?? `cloudlet on ${hostname()} (${options.port})`;
  bonjour.publish({
    name,
    type: MDNS_SERVICE_TYPE,
    protocol: 'tcp',
    port: options.port,
    txt: {
      version: options.version,
      api: '/v1',
      auth: options.auth ? 'bearer' : 'none',
      ...(options.host === '0.0.0.0' || options.host === '::' ? {} : { address: options.host }),
    },
  });
  return {
    name,
    stop: () =>
      new Promise<void>((resolve) => {
        bonjour.unpublishAll(() => bonjour.destroy(() => resolve()));
      }),
  };
}
