import { LOOKBACKS, localInputToMs, msToLocalInput } from '../format';

/** A time range as the pages keep it in their URL: a lookback, or explicit start and end. */
export interface RangeState {
  lookbackMs: number;
  startMs?: number;
  endMs?: number;
}

export function readRangeState(query: URLSearchParams, defaultLookbackMs: number): RangeState {
  const lookback = Number(query.get('lookback'));
  const start = Number(query.get('start'));
  const end = Number(query.get('end'));
  return {
    lookbackMs: lookback > 0 ? lookback : defaultLookbackMs,
    startMs: start > 0 ? start : undefined,
    endMs: end > 0 ? end : undefined,
  };
}

/** Resolves a range state to epoch milliseconds at `now`. */
export function resolveRange(
  range: RangeState,
  now = Date.now(),
): { startMs: number; endMs: number } {
  const endMs = range.endMs ?? now;
  return { startMs: range.startMs ?? endMs - range.lookbackMs, endMs };
}

export function rangeQuery(range: RangeState): Record<string, string | undefined> {
  return {
    lookback: String(range.lookbackMs),
    start: range.startMs ? String(range.startMs) : undefined,
    end: range.endMs ? String(range.endMs) : undefined,
  };
}

/** Lookback choice plus optional custom start and end. */
export function TimeRangeInputs({
  value,
  onChange,
}: {
  value: RangeState;
  onChange: (next: RangeState) => void;
}) {
  const custom = value.startMs !== undefined || value.endMs !== undefined;
  return (
    <div class="time-range">
      <label>
        Time range
        <select
          name="lookback"
          value={custom ? 'custom' : String(value.lookbackMs)}
          onChange={(event) => {
            const selected = (event.target as HTMLSelectElement).value;
            if (selected === 'custom') {
              const now = Date.now();
              onChange({ ...value, startMs: now - value.lookbackMs, endMs: now });
            } else {
              onChange({ lookbackMs: Number(selected) });
            }
          }}
        >
          {LOOKBACKS.map(([label, ms]) => (
            <option value={String(ms)}>{label}</option>
          ))}
          <option value="custom">Custom range</option>
        </select>
      </label>
      {custom ? (
        <>
          <label>
            From
            <input
              type="datetime-local"
              name="start"
              value={value.startMs ? msToLocalInput(value.startMs) : ''}
              onChange={(event) =>
                onChange({
                  ...value,
                  startMs: localInputToMs((event.target as HTMLInputElement).value),
                })
              }
            />
          </label>
          <label>
            To
            <input
              type="datetime-local"
              name="end"
              value={value.endMs ? msToLocalInput(value.endMs) : ''}
              onChange={(event) =>
                onChange({
                  ...value,
                  endMs: localInputToMs((event.target as HTMLInputElement).value),
                })
              }
            />
          </label>
        </>
      ) : null}
    </div>
  );
}
