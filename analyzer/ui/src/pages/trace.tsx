import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { getJson, storedToken, type SpanView, type TraceView } from '../api';
import { ErrorBox, Loading } from '../components/common';
import { formatMs, formatTime, nanosToDate, valueText } from '../format';
import { buildRows, collapseBelow, visibleRows, type SpanRow } from '../trace-model';
import { useApi } from '../use-api';

/** Traces with more spans than this open with every span at `COLLAPSED_DEPTH` or deeper folded. */
const LARGE_TRACE_SPANS = 200;
const COLLAPSED_DEPTH = 1;
/**
 * Above this many shown spans, the waterfall scrolls in its own box and renders only the
 * rows in view, so expanding a trace of 10,000 spans stays fast.
 */
const WINDOWED_ROWS = 500;
/** Height of one span row in pixels; `.waterfall-rows.windowed .span-row` fixes it in CSS. */
const ROW_HEIGHT = 24;
/** Rows rendered above and below the ones in view, so a fast scroll shows no gap. */
const OVERSCAN_ROWS = 20;

function AttributeTable({ title, values }: { title: string; values: Record<string, unknown> }) {
  const entries = Object.entries(values);
  if (entries.length === 0) return null;
  return (
    <div class="attributes">
      <h4>{title}</h4>
      <table>
        <tbody>
          {entries.map(([key, value]) => (
            <tr>
              <th>{key}</th>
              <td class="mono">{valueText(value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SpanDetails({ row }: { row: SpanRow }) {
  const { span } = row;
  const spanStart = BigInt(span.startTimeUnixNano);
  return (
    <div class="span-details" data-testid="span-details">
      <div class="detail-header">
        <strong>{span.name}</strong> <span class="muted">{span.serviceName}</span>
        <span class="mono muted"> span {span.spanId}</span>
      </div>
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{span.kind}</dd>
        <dt>Status</dt>
        <dd class={span.isError ? 'error-text' : ''}>
          {span.status.code}
          {span.status.message ? `: ${span.status.message}` : ''}
        </dd>
        <dt>Duration</dt>
        <dd>
          {formatMs(span.durationMs)} (self {formatMs(span.selfTimeMs)})
        </dd>
        <dt>Start</dt>
        <dd>+{formatMs(row.offsetMs)}</dd>
        {span.serviceVersion ? (
          <>
            <dt>Version</dt>
            <dd>{span.serviceVersion}</dd>
          </>
        ) : null}
        {span.parentSpanId ? (
          <>
            <dt>Parent</dt>
            <dd class="mono">{span.parentSpanId}</dd>
          </>
        ) : null}
      </dl>
      {span.missingParent ? (
        <p class="warning">
          Its parent span {span.parentSpanId} is not stored: it may not have been sent, been dropped
          or be older than the retention.
        </p>
      ) : null}
      {row.skewMs > 0 ? (
        <p class="warning">
          Clock skew: this span lies {formatMs(row.skewMs)} outside its parent, which clocks in step
          cannot produce; the hosts' clocks differ.
        </p>
      ) : null}
      {span.ingestWarnings.length > 0 ? (
        <p class="warning">Repaired at ingest: {span.ingestWarnings.join(', ')}</p>
      ) : null}
      <AttributeTable title="Attributes" values={span.attributes} />
      {span.events.length > 0 ? (
        <div class="events">
          <h4>Events</h4>
          {span.events.map((event) => (
            <div class="event">
              <div>
                <strong>{event.name}</strong>{' '}
                <span class="muted">
                  +{formatMs(Number(BigInt(event.timeUnixNano) - spanStart) / 1e6)}
                </span>
              </div>
              <AttributeTable title="" values={event.attributes} />
            </div>
          ))}
        </div>
      ) : null}
      {span.links.length > 0 ? (
        <div class="links">
          <h4>Links</h4>
          {span.links.map((link) => (
            <div class="mono">
              <a href={`/trace/${link.traceId}`}>{link.traceId}</a> span {link.spanId}
            </div>
          ))}
        </div>
      ) : null}
      <AttributeTable title="Resource" values={span.resource} />
      {span.scope.name ? (
        <p class="muted">
          Instrumentation scope: {span.scope.name} {span.scope.version}
        </p>
      ) : null}
    </div>
  );
}

function TimeAxis({ durationMs }: { durationMs: number }) {
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div class="axis">
      {ticks.map((tick) => (
        <span style={{ left: `${tick * 100}%` }}>{formatMs(durationMs * tick)}</span>
      ))}
    </div>
  );
}

function SpanRowView(props: {
  row: SpanRow;
  durationMs: number;
  collapsed: boolean;
  selected: boolean;
  onToggle: () => void;
  onSelect: () => void;
}) {
  const { row, durationMs } = props;
  const { span } = row;
  const left = durationMs > 0 ? (row.offsetMs / durationMs) * 100 : 0;
  const width = durationMs > 0 ? ((row.endMs - row.offsetMs) / durationMs) * 100 : 100;
  const classes = [
    'span-row',
    span.isError ? 'error' : '',
    row.onCriticalPath ? 'critical' : '',
    props.selected ? 'selected' : '',
  ];
  return (
    <div class={classes.join(' ')} data-testid="span-row" data-span-id={span.spanId}>
      <div class="span-label" style={{ paddingLeft: `${row.depth * 14 + 4}px` }}>
        {row.hasChildren ? (
          <button
            type="button"
            class="toggle"
            aria-label={props.collapsed ? 'Expand' : 'Collapse'}
            onClick={props.onToggle}
          >
            {props.collapsed ? '▸' : '▾'}
          </button>
        ) : (
          <span class="toggle-space" />
        )}
        <button type="button" class="span-name" onClick={props.onSelect}>
          <span class="service">{span.serviceName}</span> {span.name}
        </button>
        {span.isError ? <span class="badge error">error</span> : null}
        {span.missingParent ? <span class="badge warn">missing parent</span> : null}
        {row.skewMs > 0 ? <span class="badge warn">clock skew</span> : null}
        <span class="span-duration">{formatMs(span.durationMs)}</span>
      </div>
      <div class="span-timeline" onClick={props.onSelect}>
        <span
          class="span-bar"
          style={{ left: `${Math.min(left, 99.5)}%`, width: `${Math.max(width, 0.3)}%` }}
        />
      </div>
    </div>
  );
}

async function downloadOtlp(traceId: string): Promise<void> {
  const headers: Record<string, string> = {};
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/api/traces/${traceId}?format=otlp`, { headers });
  const url = URL.createObjectURL(await response.blob());
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = `trace-${traceId}.otlp.json`;
  anchor.click();
  URL.revokeObjectURL(url);
}

/** Returns the slice of rows in view of a scroll box whose rows are `ROW_HEIGHT` pixels high. */
function rowsInView(count: number, scrollTop: number, viewHeight: number) {
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN_ROWS);
  const last = Math.min(count, Math.ceil((scrollTop + viewHeight) / ROW_HEIGHT) + OVERSCAN_ROWS);
  return { first, last };
}

/** Tracks the scroll offset and height of a box. */
function useScrollBox() {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ scrollTop: 0, height: 600 });
  useEffect(() => {
    const element = box.current;
    if (!element) return undefined;
    const update = () =>
      setView({ scrollTop: element.scrollTop, height: element.clientHeight || 600 });
    update();
    element.addEventListener('scroll', update, { passive: true });
    window.addEventListener('resize', update);
    return () => {
      element.removeEventListener('scroll', update);
      window.removeEventListener('resize', update);
    };
  });
  return { box, view };
}

function Waterfall({ trace }: { trace: TraceView }) {
  const rows = useMemo(() => buildRows(trace), [trace]);
  const [collapsed, setCollapsed] = useState<Set<string>>(() =>
    trace.spanCount > LARGE_TRACE_SPANS ? collapseBelow(rows, COLLAPSED_DEPTH) : new Set(),
  );
  const [selected, setSelected] = useState<string | undefined>();
  const { box, view } = useScrollBox();
  const visibleSpanRows = visibleRows(rows, collapsed);
  const windowed = visibleSpanRows.length > WINDOWED_ROWS;
  const toggle = (spanId: string) => {
    const next = new Set(collapsed);
    if (next.has(spanId)) next.delete(spanId);
    else next.add(spanId);
    setCollapsed(next);
  };
  const renderRow = (row: SpanRow) => (
    <SpanRowView
      row={row}
      durationMs={trace.durationMs}
      collapsed={collapsed.has(row.span.spanId)}
      selected={selected === row.span.spanId}
      onToggle={() => toggle(row.span.spanId)}
      onSelect={() => setSelected(selected === row.span.spanId ? undefined : row.span.spanId)}
    />
  );
  const { first, last } = windowed
    ? rowsInView(visibleSpanRows.length, view.scrollTop, view.height)
    : { first: 0, last: visibleSpanRows.length };
  const selectedRow = windowed
    ? visibleSpanRows.find((row) => row.span.spanId === selected)
    : undefined;
  return (
    <section class="waterfall">
      <div class="waterfall-tools">
        <button type="button" onClick={() => setCollapsed(new Set())}>
          Expand all
        </button>
        <button type="button" onClick={() => setCollapsed(collapseBelow(rows, 1))}>
          Collapse all
        </button>
        <span class="muted">
          {visibleSpanRows.length} of {rows.length} spans shown · <span class="legend critical" />{' '}
          critical path · <span class="legend error" /> error
        </span>
      </div>
      <div class="waterfall-header">
        <div class="span-label">Service and operation</div>
        <TimeAxis durationMs={trace.durationMs} />
      </div>
      <div class={windowed ? 'waterfall-rows windowed' : 'waterfall-rows'} ref={box}>
        {windowed ? <div style={{ height: `${first * ROW_HEIGHT}px` }} /> : null}
        {visibleSpanRows.slice(first, last).map((row) => (
          <>
            {renderRow(row)}
            {!windowed && selected === row.span.spanId ? <SpanDetails row={row} /> : null}
          </>
        ))}
        {windowed ? (
          <div style={{ height: `${(visibleSpanRows.length - last) * ROW_HEIGHT}px` }} />
        ) : null}
      </div>
      {selectedRow ? <SpanDetails row={selectedRow} /> : null}
    </section>
  );
}

function countSpans(spans: SpanView[]): number {
  return spans.reduce((sum, span) => sum + 1 + countSpans(span.children), 0);
}

export function TracePage({ traceId }: { traceId: string }) {
  const trace = useApi(() => getJson<TraceView>(`/api/traces/${traceId}`), [traceId]);
  if (trace.error)
    return (
      <div class="page">
        <ErrorBox error={trace.error} />
      </div>
    );
  if (!trace.data)
    return (
      <div class="page">
        <Loading what="the trace" />
      </div>
    );
  const view = trace.data;
  const root = view.roots[0];
  return (
    <div class="page">
      <h1>
        {root ? `${root.serviceName}: ${root.name}` : 'Trace'}{' '}
        <span class="mono muted small">{view.traceId}</span>
      </h1>
      <div class="trace-facts">
        <span>Started {formatTime(nanosToDate(view.startTimeUnixNano))}</span>
        <span>Duration {formatMs(view.durationMs)}</span>
        <span data-testid="span-count">{countSpans(view.roots)} spans</span>
        <span class={view.errorCount > 0 ? 'error-text' : ''}>{view.errorCount} errors</span>
        <span>Services: {view.services.join(', ')}</span>
        {view.missingParentCount > 0 ? (
          <span class="warning-text">
            {view.missingParentCount === 1
              ? '1 span with a missing parent'
              : `${view.missingParentCount} spans with a missing parent`}
          </span>
        ) : null}
        <button type="button" onClick={() => void downloadOtlp(view.traceId)}>
          Download OTLP JSON
        </button>
      </div>
      <Waterfall trace={view} key={view.traceId} />
    </div>
  );
}
