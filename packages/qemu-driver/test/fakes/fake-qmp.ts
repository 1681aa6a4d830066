import { type FakeSocket, fakeSocket } from './fake-socket.js';

export const GREETING = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian' }, capabilities: ['oob'] },
};

export type Reply = { return: unknown } | { error: { class: string; desc: string } } | undefined;
type Handler = (args: Record<string, unknown> | undefined, id: unknown) => Reply;

export interface FakeQmp extends FakeSocket {
  readonly commands: { execute: string; arguments?: Record<string, unknown>; id: unknown }[];
  handle(command: string, handler: Handler): void;
  event(event: string, data?: Record<string, unknown>): void;
  reply(id: unknown, reply: Reply): void;
}

/**
 * A QMP peer: sends the greeting, answers `qmp_capabilities`, and answers other commands with the registered
 * handler (`{ return: {} }` if none; a handler returning undefined leaves the command unanswered).
 */
export function fakeQmp(options: { greet?: boolean } = {}): FakeQmp {
  const peer = fakeSocket();
  const handlers = new Map<string, Handler>([['qmp_capabilities', () => ({ return: {} })]]);
  const commands: FakeQmp['commands'] = [];
  const reply = (id: unknown, answer: Reply) => {
    if (answer !== undefined) peer.send(`${JSON.stringify({ ...answer, id })}\r\n`);
  };
  peer.onLine((line) => {
    const command = JSON.parse(line) as FakeQmp['commands'][number];
    commands.push(command);
    const handler = handlers.get(command.execute) ?? (() => ({ return: {} }));
    reply(command.id, handler(command.arguments, command.id));
  });
  if (options.greet !== false) queueMicrotask(() => peer.send(`${JSON.stringify(GREETING)}\r\n`));
  return {
    ...peer,
    commands,
    handle: (command, handler) => handlers.set(command, handler),
    event: (event, data = {}) =>
      peer.send(`${JSON.stringify({ event, data, timestamp: { seconds: 1, microseconds: 2 } })}\r\n`),
    reply,
  };
}
