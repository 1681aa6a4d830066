import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSerialConsole, SerialClosedError, SerialTimeoutError } from '../src/index.js';
import { createAnsiStripper } from '../src/serial/ansi.js';
import { commandLine, findCommandResult } from '../src/serial/markers.js';
import { fakeClock } from './fakes/fake-clock.js';
import { fakeShell, PROMPT } from './fakes/fake-shell.js';
import { fakeSocket } from './fakes/fake-socket.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createAnsiStripper', () => {
  it('removes CSI and OSC sequences, CR and other controls, keeps newlines and tabs', () => {
    const strip = createAnsiStripper();
    expect(strip('a\x1b[6nb\x1b[1;31mc\x1b[0m\r\n\td\x07\x1b]0;title\x07e\x1b(Bf\x1b7g')).toBe('abc\n\tdefg');
  });

  it('removes a sequence split across chunks', () => {
    const strip = createAnsiStripper();
    expect(strip('vm# \x1b')).toBe('vm# ');
    expect(strip('[6')).toBe('');
    expect(strip('nok')).toBe('ok');
  });

  it('gives the same text for any chunking', () => {
    const raw = 'x\x1b[6nvm# echo hi\r\nhi\r\n\x1b]2;t\x1b\\\x1b[?25lend';
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: raw.length - 1 }), { maxLength: 8 }), (cuts) => {
        const strip = createAnsiStripper();
        const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), raw.length];
        const out = points.slice(1).map((end, i) => strip(raw.slice(points[i], end)));
        expect(out.join('')).toBe('xvm# echo hi\nhi\nend');
      }),
    );
  });
});

describe('command markers', () => {
  it("wraps the command between markers whose typed form contains ''", () => {
    expect(commandLine('ls /mnt', 't1')).toBe("echo __St1''__; ls /mnt; echo __Et1''__$?\n");
  });

  it('does not put a ; after a trailing & or keep a trailing ;', () => {
    expect(commandLine('sleep 9 &', 't')).toBe("echo __St''__; sleep 9 & echo __Et''__$?\n");
    expect(commandLine('true && false;', 't')).toBe("echo __St''__; true && false; echo __Et''__$?\n");
  });

  it('finds output and status, ignoring the echoed command line', () => {
    const text = "vm# echo __Sa''__; ls; echo __Ea''__$?\n__Sa__\nx\ny\n__Ea__2\nvm# ";
    expect(findCommandResult(text, 'a')).toEqual({ output: 'x\ny', status: 2, end: text.length - 4 });
  });

  it('finds output that does not end in a newline', () => {
    expect(findCommandResult('__Sb__\nabc__Eb__0\n', 'b')?.output).toBe('abc');
  });

  it('waits for the newline after the status', () => {
    expect(findCommandResult('__Sc__\nout\n__Ec__12', 'c')).toBeUndefined();
  });
});

describe('createSerialConsole', () => {
  it('waits for a prompt across chunk splits and ANSI noise', async () => {
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket);
    const waiting = console.waitFor('vm# ', 1000);
    for (const char of 'booting\r\n\x1b[6nvm# ') guest.send(char);
    expect(await waiting).toBe('booting\nvm# ');
  });

  it('waits for a regex and consumes what it matched', async () => {
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket);
    guest.send('count=1\r\ncount=2\r\n');
    expect(await console.waitFor(/count=(\d)/)).toBe('count=1');
    expect(await console.waitFor(/count=(\d)/g)).toBe('\ncount=2');
  });

  it('runs a command and returns its output', async () => {
    const shell = fakeShell();
    shell.respond('cat /mnt/www/index.html', '<h1>hello</h1>\n');
    const console = createSerialConsole(shell.socket, { nextTag: () => 'T1' });
    expect(await console.run('cat /mnt/www/index.html')).toBe('<h1>hello</h1>');
    expect(shell.text()).toBe("echo __ST1''__; cat /mnt/www/index.html; echo __ET1''__$?\n");
  });

  it('returns the exit status', async () => {
    const shell = fakeShell();
    shell.respond('false', '', 1);
    shell.respond('ls /nope', 'ls: /nope: No such file or directory\n', 1);
    const console = createSerialConsole(shell.socket);
    expect(await console.runWithStatus('false')).toEqual({ output: '', status: 1 });
    expect(await console.runWithStatus('ls /nope')).toEqual({
      output: 'ls: /nope: No such file or directory',
      status: 1,
    });
  });

  it('is not fooled by a long wrapped echo, byte-by-byte delivery or prompts', async () => {
    const shell = fakeShell();
    shell.chunkSize = 1;
    shell.wrapAt = 7;
    const command = `echo ${'x'.repeat(150)}`;
    shell.respond(command, `${'x'.repeat(150)}\n`);
    const console = createSerialConsole(shell.socket);
    expect(await console.run(command)).toBe('x'.repeat(150));
    expect(await console.run('true')).toBe('');
  });

  it('cuts the right output for any wrap column and chunk size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: 1, max: 64 }),
        async (wrapAt, chunkSize) => {
          const shell = fakeShell();
          shell.wrapAt = wrapAt;
          shell.chunkSize = chunkSize;
          shell.respond('echo $FOO; md5sum /tmp/state.txt', 'bar123\nd41d8cd9  /tmp/state.txt\n');
          const console = createSerialConsole(shell.socket);
          const output = await console.run('echo $FOO; md5sum /tmp/state.txt');
          expect(output).toBe('bar123\nd41d8cd9  /tmp/state.txt');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('runs commands one after another when called concurrently', async () => {
    const shell = fakeShell();
    shell.respond('echo 1', '1\n');
    shell.respond('echo 2', '2\n');
    const console = createSerialConsole(shell.socket);
    expect(await Promise.all([console.run('echo 1'), console.run('echo 2')])).toEqual(['1', '2']);
  });

  it('times out with SerialTimeoutError carrying the tail of the output', async () => {
    const { clock, advance } = fakeClock();
    const shell = fakeShell();
    shell.hang('sleep 999');
    const console = createSerialConsole(shell.socket, { clock });
    const running = console.run('sleep 999', { timeoutMs: 2000 }).catch((e: unknown) => e);
    await tick();
    advance(2000);
    const error = await running;
    expect(error).toBeInstanceOf(SerialTimeoutError);
    expect(error).toMatchObject({ timeoutMs: 2000, tail: expect.stringContaining('sleep 999; echo __E') });
    expect((error as Error).message).toContain('sleep 999');
  });

  it('can run again after a timeout', async () => {
    const { clock, advance } = fakeClock();
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket, { clock });
    const waiting = console.waitFor('never', 10).catch((e: unknown) => e);
    await tick();
    advance(10);
    expect(await waiting).toBeInstanceOf(SerialTimeoutError);
    guest.send(`later${PROMPT}`);
    expect(await console.waitFor('vm# ', 10)).toBe('latervm# ');
  });

  it('fails waiting calls with SerialClosedError when the line closes', async () => {
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket);
    const waiting = console.waitFor('vm# ').catch((e: unknown) => e);
    guest.send('Kernel panic');
    await tick();
    guest.hangUp();
    const error = await waiting;
    expect(error).toBeInstanceOf(SerialClosedError);
    expect((error as SerialClosedError).tail).toBe('Kernel panic');
    await expect(console.run('true')).rejects.toBeInstanceOf(SerialClosedError);
  });

  it('bounds the buffer when nobody reads the output', async () => {
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket);
    for (let i = 0; i < 40; i++) guest.send(`${String(i).padStart(2, '0')}${'.'.repeat(64 * 1024)}\n`);
    guest.send('vm# ');
    const seen = await console.waitFor('vm# ');
    expect(seen.length).toBeLessThanOrEqual(1024 * 1024);
    expect(seen.length).toBeGreaterThan(64 * 1024);
    expect(seen.startsWith('00')).toBe(false);
    expect(console.tail(4)).toBe('vm# ');
  });

  it('keeps a bounded tail of everything seen', async () => {
    const guest = fakeSocket();
    const console = createSerialConsole(guest.socket);
    guest.send('a\r\nb\r\n');
    await tick();
    expect(console.tail()).toBe('a\nb\n');
    expect(console.tail(2)).toBe('b\n');
  });
});
