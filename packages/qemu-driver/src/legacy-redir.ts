import { type PortForward, PortForwardSchema, VmSpecError } from './spec.js';

const decimal = /^\d{1,5}$/;

/**
 * Parses the value of the seed's legacy `-redir [tcp|udp]:HOSTPORT:[GUESTADDR]:GUESTPORT` option
 * (e.g. `tcp:8080::80`), which QEMU 7.2 no longer accepts, into a port forward.
 * Unlike QEMU's old default (all interfaces), the host side binds 127.0.0.1, like every port forward here.
 */
export function parseLegacyRedir(value: string, field = '-redir'): PortForward {
  const parts = value.split(':');
  const withProto = parts.length === 4 ? parts : parts.length === 3 ? ['tcp', ...parts] : undefined;
  const fail = (why: string): never => {
    throw new VmSpecError([{ path: field, message: `${JSON.stringify(value)}: ${why}` }]);
  };
  if (withProto === undefined) return fail('expected [tcp|udp]:HOSTPORT:[GUESTADDR]:GUESTPORT');
  const [proto = '', hostPort = '', guestAddress = '', guestPort = ''] = withProto;
  if (proto !== 'tcp' && proto !== 'udp')
    return fail(`protocol must be tcp or udp, not ${JSON.stringify(proto)}`);
  if (!decimal.test(hostPort)) return fail('HOSTPORT must be a port number');
  if (!decimal.test(guestPort)) return fail('GUESTPORT must be a port number');
  const parsed = PortForwardSchema.safeParse({
    proto,
    hostPort: Number(hostPort),
    guestPort: Number(guestPort),
    ...(guestAddress === '' ? {} : { guestAddress }),
  });
  if (!parsed.success)
    return fail(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/**
 * Pulls every `-redir VALUE` pair out of an extra-args list (as found in the seed's VM configs), returning
 * the remaining args and the port forwards to put on the first NIC.
 */
export function extractLegacyRedirs(args: readonly string[]): {
  args: string[];
  portForwards: PortForward[];
} {
  const rest: string[] = [];
  const portForwards: PortForward[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const inline = /^--?redir=(.*)$/.exec(arg);
    if (inline) {
      portForwards.push(parseLegacyRedir(inline[1] ?? '', `extraArgs.${i}`));
    } else if (arg === '-redir' || arg === '--redir') {
      const value = args[i + 1];
      if (value === undefined)
        throw new VmSpecError([{ path: `extraArgs.${i}`, message: '-redir without a value' }]);
      portForwards.push(parseLegacyRedir(value, `extraArgs.${i + 1}`));
      i++;
    } else {
      rest.push(arg);
    }
  }
  return { args: rest, portForwards };
}
