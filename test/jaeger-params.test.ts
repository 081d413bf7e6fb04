import { parseGoDuration, parseMicrosOrMillis } from '../analyzer/jaeger/params';
import { tagCondition } from '../analyzer/jaeger/span-search';
import { parseAnnotationQuery } from '../analyzer/zipkin/routes';

describe('parseGoDuration', () => {
  it.each([
    ['100ms', 100_000_000n],
    ['1.2s', 1_200_000_000n],
    ['1m30s', 90_000_000_000n],
    ['500us', 500_000n],
    ['750µs', 750_000n],
    ['2h', 7_200_000_000_000n],
    ['2d', 172_800_000_000_000n],
    ['1h0m0.5s', 3_600_500_000_000n],
    ['0', 0n],
  ])('reads %s', (text, nanos) => {
    expect(parseGoDuration('minDuration', text)).toBe(nanos);
  });

  it.each(['', '10', 'fast', '1m30', 's', '-1s', '1s '])('rejects %j', (text) => {
    expect(() => parseGoDuration('minDuration', text)).toThrow(
      `invalid minDuration ${JSON.stringify(text)}`,
    );
  });
});

describe('parseMicrosOrMillis', () => {
  it('tells microseconds from milliseconds by size', () => {
    expect(parseMicrosOrMillis('start', '1717000000000000')).toBe(1_717_000_000_000);
    expect(parseMicrosOrMillis('start', '1717000000000')).toBe(1_717_000_000_000);
  });

  it('rejects text', () => {
    expect(() => parseMicrosOrMillis('end', '2024-05-29')).toThrow('invalid end "2024-05-29"');
  });
});

describe('parseAnnotationQuery', () => {
  it('splits terms joined by and', () => {
    expect(parseAnnotationQuery('error and http.method=GET AND peer.service=a=b')).toEqual([
      { key: 'error' },
      { key: 'http.method', value: 'GET' },
      { key: 'peer.service', value: 'a=b' },
    ]);
    expect(parseAnnotationQuery(undefined)).toEqual([]);
  });
});

describe('tagCondition', () => {
  it('binds keys and values as parameters', () => {
    const params: Record<string, unknown> = {};
    const sql = tagCondition({ key: "k' OR 1=1", value: "v'--" }, 3, params);
    expect(params).toEqual({ tagKey3: "k' OR 1=1", tagValue3: "v'--" });
    expect(sql).not.toContain("k'");
    expect(sql).toContain('{tagKey3:String}');
    expect(sql).toContain('{tagValue3:String}');
  });

  it('maps span fields and the error flag', () => {
    const params: Record<string, unknown> = {};
    expect(tagCondition({ key: 'error', value: 'true' }, 0, params)).toBe('is_error');
    expect(tagCondition({ key: 'error', value: 'false' }, 1, params)).toBe('NOT is_error');
    expect(tagCondition({ key: 'span.kind', value: 'server' }, 2, params)).toBe(
      'lower(toString(kind)) = lower({tagValue2:String})',
    );
    expect(tagCondition({ key: '__proto__', value: 'x' }, 4, params)).toContain('mapContains');
  });
});
