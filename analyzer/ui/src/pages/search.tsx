import { useState } from 'preact/hooks';
import { getJson, type TraceSummary } from '../api';
import { ErrorBox, Loading } from '../components/common';
import {
  TimeRangeInputs,
  rangeQuery,
  readRangeState,
  resolveRange,
  type RangeState,
} from '../components/time-range';
import { formatMs, formatTime, nanosToDate } from '../format';
import { Link, navigate, type Location } from '../router';
import { useApi } from '../use-api';

interface SearchForm {
  service: string;
  operation: string;
  tags: string;
  minDuration: string;
  maxDuration: string;
  errors: boolean;
  limit: string;
  range: RangeState;
}

function readForm(query: URLSearchParams): SearchForm {
  return {
    service: query.get('service') ?? '',
    operation: query.get('operation') ?? '',
    tags: query.get('tags') ?? '',
    minDuration: query.get('minDuration') ?? '',
    maxDuration: query.get('maxDuration') ?? '',
    errors: query.get('errors') === 'true',
    limit: query.get('limit') ?? '20',
    range: readRangeState(query, 3_600_000),
  };
}

function formUrl(form: SearchForm): string {
  const params = new URLSearchParams();
  const add = (key: string, value: string | undefined) => value && params.set(key, value);
  add('service', form.service);
  add('operation', form.operation);
  add('tags', form.tags.trim());
  add('minDuration', form.minDuration.trim());
  add('maxDuration', form.maxDuration.trim());
  if (form.errors) params.set('errors', 'true');
  add('limit', form.limit);
  for (const [key, value] of Object.entries(rangeQuery(form.range))) add(key, value);
  return `/search?${params}`;
}

/**
 * Parses tags written as `key=value` pairs separated by spaces, as the Jaeger UI takes
 * them; a value with spaces goes in double quotes.
 */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  const pattern = /\s*([^\s=]+)=("([^"]*)"|\S+)\s*/y;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < text.length && (match = pattern.exec(text)) !== null) {
    tags[match[1]] = match[3] ?? match[2];
  }
  if (pattern.lastIndex < text.trimEnd().length) {
    throw new Error(
      `invalid tags "${text}": write key=value pairs separated by spaces, such as http.response.status_code=500 error=true`,
    );
  }
  return tags;
}

async function search(form: SearchForm): Promise<TraceSummary[]> {
  const { startMs, endMs } = resolveRange(form.range);
  const tags = form.tags.trim() ? parseTags(form.tags) : undefined;
  const body = await getJson<{ data: TraceSummary[] }>('/api/traces', {
    service: form.service,
    operation: form.operation,
    tags: tags ? JSON.stringify(tags) : undefined,
    minDuration: form.minDuration.trim(),
    maxDuration: form.maxDuration.trim(),
    errors: form.errors,
    limit: form.limit,
    start: Math.floor(startMs),
    end: Math.ceil(endMs),
  });
  return body.data;
}

function SearchFormView({ initial }: { initial: SearchForm }) {
  const [form, setForm] = useState(initial);
  const services = useApi(() => getJson<{ data: string[] }>('/api/services'), []);
  const operations = useApi(
    () =>
      form.service
        ? getJson<{ data: { name: string }[] }>(
            `/api/services/${encodeURIComponent(form.service)}/operations`,
          )
        : Promise.resolve({ data: [] }),
    [form.service],
  );
  const operationNames = [...new Set((operations.data?.data ?? []).map((item) => item.name))];
  const set = (patch: Partial<SearchForm>) => setForm({ ...form, ...patch });
  const text = (event: Event) => (event.target as HTMLInputElement).value;

  return (
    <form
      class="search-form"
      aria-label="Trace search"
      onSubmit={(event) => {
        event.preventDefault();
        navigate(formUrl(form));
      }}
    >
      <label>
        Service
        <select
          name="service"
          value={form.service}
          onChange={(event) => set({ service: text(event), operation: '' })}
        >
          <option value="">All services</option>
          {(services.data?.data ?? []).map((name) => (
            <option value={name}>{name}</option>
          ))}
        </select>
      </label>
      <label>
        Operation
        <select
          name="operation"
          value={form.operation}
          onChange={(event) => set({ operation: text(event) })}
        >
          <option value="">All operations</option>
          {operationNames.map((name) => (
            <option value={name}>{name}</option>
          ))}
        </select>
      </label>
      <label class="wide">
        Tags
        <input
          name="tags"
          placeholder="http.response.status_code=500 error=true"
          value={form.tags}
          onInput={(event) => set({ tags: text(event) })}
        />
      </label>
      <label>
        Min duration
        <input
          name="minDuration"
          placeholder="250ms"
          value={form.minDuration}
          onInput={(event) => set({ minDuration: text(event) })}
        />
      </label>
      <label>
        Max duration
        <input
          name="maxDuration"
          placeholder="5s"
          value={form.maxDuration}
          onInput={(event) => set({ maxDuration: text(event) })}
        />
      </label>
      <label>
        Limit
        <input
          name="limit"
          type="number"
          min="1"
          value={form.limit}
          onInput={(event) => set({ limit: text(event) })}
        />
      </label>
      <TimeRangeInputs value={form.range} onChange={(range) => set({ range })} />
      <label class="checkbox">
        <input
          type="checkbox"
          name="errors"
          checked={form.errors}
          onChange={(event) => set({ errors: (event.target as HTMLInputElement).checked })}
        />
        Errors only
      </label>
      <button type="submit">Find traces</button>
    </form>
  );
}

/** Duration of each found trace against its start time; errors in red. */
function ScatterPlot({ traces }: { traces: TraceSummary[] }) {
  if (traces.length < 2) return null;
  const width = 900;
  const height = 140;
  const times = traces.map((trace) => Number(BigInt(trace.startTimeUnixNano) / 1_000_000n));
  const minTime = Math.min(...times);
  const spanTime = Math.max(...times) - minTime || 1;
  const maxDuration = Math.max(...traces.map((trace) => trace.durationMs)) || 1;
  return (
    <svg class="scatter" viewBox={`0 0 ${width} ${height}`} role="img" aria-label="Trace durations">
      {traces.map((trace, index) => {
        const x = 10 + ((times[index] - minTime) / spanTime) * (width - 20);
        const y = height - 10 - (trace.durationMs / maxDuration) * (height - 20);
        return (
          <circle
            cx={x}
            cy={y}
            r={4 + Math.min(6, Math.log2(trace.spanCount + 1))}
            class={trace.errorCount > 0 ? 'dot error' : 'dot'}
            onClick={() => navigate(`/trace/${trace.traceId}`)}
          >
            <title>
              {trace.rootService}: {trace.rootName} {formatMs(trace.durationMs)}
            </title>
          </circle>
        );
      })}
    </svg>
  );
}

function Results({ form }: { form: SearchForm }) {
  const results = useApi(() => search(form), [formUrl(form)]);
  if (results.error) return <ErrorBox error={results.error} />;
  if (!results.data) return <Loading what="traces" />;
  const traces = results.data;
  if (traces.length === 0) return <p class="muted">No trace matches these conditions.</p>;
  const longest = Math.max(...traces.map((trace) => trace.durationMs)) || 1;
  const limitReached = traces.length >= Number(form.limit);
  return (
    <section>
      <h2>{traces.length} traces</h2>
      {limitReached && (
        <p class="muted limit-reached">
          The newest {traces.length} only: more traces may match. Raise Limit to see them.
        </p>
      )}
      <ScatterPlot traces={traces} />
      <table class="traces">
        <thead>
          <tr>
            <th>Root</th>
            <th>Start</th>
            <th>Duration</th>
            <th>Spans</th>
            <th>Errors</th>
            <th>Services</th>
          </tr>
        </thead>
        <tbody>
          {traces.map((trace) => (
            <tr data-testid="trace-row" class={trace.errorCount > 0 ? 'has-error' : ''}>
              <td>
                <Link href={`/trace/${trace.traceId}`} class="trace-link">
                  <strong>{trace.rootService || '(missing root)'}</strong>:{' '}
                  {trace.rootName || trace.traceId}
                </Link>
                <div class="mono muted">{trace.traceId}</div>
              </td>
              <td>{formatTime(nanosToDate(trace.startTimeUnixNano))}</td>
              <td>
                <div class="duration-cell">
                  <span
                    class="duration-bar"
                    style={{ width: `${Math.max(2, (trace.durationMs / longest) * 100)}%` }}
                  />
                  {formatMs(trace.durationMs)}
                </div>
              </td>
              <td>{trace.spanCount}</td>
              <td>
                {trace.errorCount > 0 ? <span class="badge error">{trace.errorCount}</span> : 0}
              </td>
              <td>{trace.services.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function SearchPage({ location }: { location: Location }) {
  const form = readForm(location.query);
  const key = location.query.toString();
  return (
    <div class="page">
      <h1>Find traces</h1>
      <SearchFormView initial={form} key={key} />
      <Results form={form} />
    </div>
  );
}
