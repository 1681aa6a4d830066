import { describe, expect, it } from 'vitest';
import { parseVmSpec } from '../src/index.js';
import { resolveHostPorts } from '../src/ports.js';

describe('resolveHostPorts', () => {
  const spec = parseVmSpec({
    memoryMiB: 128,
    nics: [
      { portForwards: [{ guestPort: 80 }, { hostPort: 40001, guestPort: 22 }] },
      { portForwards: [{ proto: 'udp', guestPort: 53 }] },
    ],
  });

  it('picks a port for each 0, never one that is fixed or already picked', async () => {
    const offered = [40001, 40001, 40002, 40002, 40003];
    const asked: string[] = [];
    const resolved = await resolveHostPorts(spec, async (proto, host) => {
      asked.push(`${proto}@${host}`);
      return offered.shift() ?? 0;
    });
    expect(resolved.portForwards.map((f) => [f.nic, f.proto, f.hostPort, f.guestPort])).toEqual([
      [0, 'tcp', 40002, 80],
      [0, 'tcp', 40001, 22],
      [1, 'udp', 40002, 53],
    ]);
    expect(asked).toEqual(['tcp@127.0.0.1', 'tcp@127.0.0.1', 'tcp@127.0.0.1', 'udp@127.0.0.1']);
    expect(resolved.spec.nics[0]?.portForwards[0]?.hostPort).toBe(40002);
    expect(spec.nics[0]?.portForwards[0]?.hostPort).toBe(0); // the input is not modified
  });

  it('gives up when no distinct port turns up', async () => {
    const fixed = parseVmSpec({
      memoryMiB: 128,
      nics: [{ portForwards: [{ hostPort: 5000, guestPort: 1 }, { guestPort: 2 }] }],
    });
    await expect(resolveHostPorts(fixed, async () => 5000)).rejects.toThrow(/free tcp port/);
  });

  it('leaves a spec without port 0 alone', async () => {
    const fixed = parseVmSpec({
      memoryMiB: 128,
      nics: [{ portForwards: [{ hostPort: 5000, guestPort: 1 }] }],
    });
    const resolved = await resolveHostPorts(fixed, async () => {
      throw new Error('not called');
    });
    expect(resolved.spec).toEqual(fixed);
  });
});
