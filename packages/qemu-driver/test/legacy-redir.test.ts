import { describe, expect, it } from 'vitest';
import { extractLegacyRedirs, parseLegacyRedir, VmSpecError } from '../src/index.js';

describe('parseLegacyRedir', () => {
  it("parses the seed's tcp:HOSTPORT::GUESTPORT form", () => {
    expect(parseLegacyRedir('tcp:2222::22')).toEqual({
      proto: 'tcp',
      hostAddress: '127.0.0.1',
      hostPort: 2222,
      guestPort: 22,
    });
  });

  it('parses udp with a guest address', () => {
    expect(parseLegacyRedir('udp:5353:10.0.2.15:53')).toEqual({
      proto: 'udp',
      hostAddress: '127.0.0.1',
      hostPort: 5353,
      guestAddress: '10.0.2.15',
      guestPort: 53,
    });
  });

  it('defaults to tcp when the protocol is left out', () => {
    expect(parseLegacyRedir('8080::80')).toMatchObject({ proto: 'tcp', hostPort: 8080, guestPort: 80 });
  });

  it.each([
    ['', /expected/],
    ['tcp:8080:80', /HOSTPORT|GUESTPORT|port/],
    ['sctp:1::2', /protocol/],
    ['tcp:x::80', /HOSTPORT/],
    ['tcp:80::', /GUESTPORT/],
    ['tcp:80::0', /guestPort/],
    ['tcp:99999::80', /hostPort/],
    ['tcp:1:nohost:80', /guestAddress/],
    ['tcp:1::2:3:4', /expected/],
  ])('rejects %j', (value, message) => {
    expect(() => parseLegacyRedir(value)).toThrow(VmSpecError);
    expect(() => parseLegacyRedir(value)).toThrow(message);
  });
});

describe('extractLegacyRedirs', () => {
  it('pulls -redir pairs out and keeps the other args in order', () => {
    const { args, portForwards } = extractLegacyRedirs([
      '-rtc',
      'base=utc',
      '-redir',
      'tcp:8080::80',
      '-redir=udp:53::53',
      '-s',
    ]);
    expect(args).toEqual(['-rtc', 'base=utc', '-s']);
    expect(portForwards.map((f) => [f.proto, f.hostPort, f.guestPort])).toEqual([
      ['tcp', 8080, 80],
      ['udp', 53, 53],
    ]);
  });

  it('names the index of a bad value', () => {
    try {
      extractLegacyRedirs(['-s', '-redir', 'bogus']);
      expect.unreachable();
    } catch (error) {
      expect((error as VmSpecError).issues[0]?.path).toBe('extraArgs.2');
    }
  });

  it('rejects -redir without a value', () => {
    expect(() => extractLegacyRedirs(['-redir'])).toThrow(/without a value/);
  });
});
