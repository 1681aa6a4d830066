// The README's library example, run by packages/core/test/overlay.vm.test.ts:
//   pnpm exec tsx examples/synthesize.ts app.zip 80
// synthesizes an overlay on this cloudlet (its base must be registered in $CLOUDLET_HOME), asks the server
// inside for a page through its forwarded port, and stops the VM.
import { openBaseRegistry } from '@cloudlet/base-registry';
import { synthesize } from '@cloudlet/core';

export async function synthesizeAndFetch(overlay: string, guestPort: number, path = '/', home?: string) {
  const registry = await openBaseRegistry(home === undefined ? {} : { home });
  try {
    const synth = await synthesize({
      registry,
      overlay, // a file or an http(s) URL
      portForwards: [{ guestPort }], // host port 0: any free port
      onProgress: (p) => {
        if (p.stage !== 'apply') console.error(`synthesis: ${p.stage}`);
      },
    });
    try {
      const hostPort = synth.vm.hostPort(guestPort);
      console.error(
        `resumed in ${synth.timings.total.toFixed(2)} s; guest port ${guestPort} is 127.0.0.1:${hostPort}`,
      );
      const response = await fetch(`http://127.0.0.1:${hostPort}${path}`);
      return await response.text();
    } finally {
      await synth.stop(); // stops QEMU and removes the VM's folder
    }
  } finally {
    registry.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [overlay, port = '80', path = '/'] = process.argv.slice(2);
  if (overlay === undefined) throw new Error('usage: tsx examples/synthesize.ts OVERLAY [GUEST_PORT] [PATH]');
  console.log(await synthesizeAndFetch(overlay, Number(port), path));
}
