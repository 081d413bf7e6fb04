import { SPAN_COLUMNS, splitSpanRows, toJsonSpanRows, toSpanRow } from '../lib/storage/span-rows';
import { makeSpan } from './helpers/spans';

describe('JSON span rows', () => {
  it('split into one part a line', () => {
    const spans = [makeSpan(1, '', 0, 1), makeSpan(2, 1, 0, 1), makeSpan(3, 1, 0, 1)];
    spans[1].statusMessage = 'line one\nline two';
    const rows = toJsonSpanRows(spans);
    expect(rows.count).toBe(3);
    expect(rows.columns).toEqual(SPAN_COLUMNS);

    const lines = splitSpanRows(rows);
    expect(lines).toHaveLength(3);
    lines.forEach((line, index) => {
      const row = toSpanRow(spans[index]);
      expect(JSON.parse(line.chunks[0].toString())).toEqual(
        SPAN_COLUMNS.map((column) => row[column]),
      );
      expect(line.count).toBe(1);
      expect(line.columns).toBe(rows.columns);
    });
  });

  it('split rows in several chunks', () => {
    const first = toJsonSpanRows([makeSpan(1, '', 0, 1)]);
    const second = toJsonSpanRows([makeSpan(2, 1, 0, 1), makeSpan(3, 1, 0, 1)]);
    const joined = { ...first, chunks: [...first.chunks, ...second.chunks], count: 3 };
    expect(splitSpanRows(joined).map((line) => line.chunks[0])).toEqual([
      ...splitSpanRows(first).map((line) => line.chunks[0]),
      ...splitSpanRows(second).map((line) => line.chunks[0]),
    ]);
  });
});
