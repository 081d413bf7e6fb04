import { useState } from 'preact/hooks';
import { getJson, type DependencyEdge, type Report } from '../api';
import { ErrorBox, Loading, SeverityBadge } from '../components/common';
import {
  TimeRangeInputs,
  rangeQuery,
  readRangeState,
  resolveRange,
  type RangeState,
} from '../components/time-range';
import { formatMs, formatPercent } from '../format';
import { layoutMap, type MapEdge, type MapLayout, type MapNode } from '../map-layout';
import { Link, navigate, type Location } from '../router';
import { useApi } from '../use-api';

async function loadMap(range: RangeState) {
  const { startMs, endMs } = resolveRange(range);
  const query = { start: Math.floor(startMs), end: Math.ceil(endMs) };
  const [dependencies, report] = await Promise.all([
    getJson<{ data: DependencyEdge[] }>('/api/dependencies', query),
    getJson<Report>('/api/report', query),
  ]);
  return { layout: layoutMap(dependencies.data, report.findings), range: { startMs, endMs } };
}

function edgePath(edge: MapEdge): string {
  const { from, to } = edge;
  if (from === to) {
    return `M ${from.x} ${from.y - from.radius} c 40 -60 80 0 ${from.radius} ${from.radius}`;
  }
  const dx = to.x - from.x;
  const startX = from.x + Math.sign(dx || 1) * from.radius;
  const endX = to.x - Math.sign(dx || 1) * (to.radius + 6);
  const bend = Math.abs(dx) < 1 ? 80 : dx / 2;
  return `M ${startX} ${from.y} C ${startX + bend} ${from.y}, ${endX - bend} ${to.y}, ${endX} ${to.y}`;
}

function searchLink(service: string, range: { startMs: number; endMs: number }, errors: boolean) {
  const params = new URLSearchParams({
    service,
    start: String(Math.floor(range.startMs)),
    end: String(Math.ceil(range.endMs)),
  });
  if (errors) params.set('errors', 'true');
  return `/search?${params}`;
}

function EdgePanel({ item, range }: { item: MapEdge; range: { startMs: number; endMs: number } }) {
  const { edge, finding } = item;
  return (
    <aside class="map-panel" data-testid="edge-panel">
      <h3>
        {edge.caller} → {edge.callee}
      </h3>
      {edge.virtualCallee ? (
        <p class="muted">{edge.callee} sends no spans; it is named from the caller's attributes.</p>
      ) : null}
      <dl class="facts">
        <dt>Calls</dt>
        <dd>{edge.calls}</dd>
        <dt>Errors</dt>
        <dd class={edge.errors > 0 ? 'error-text' : ''}>
          {edge.errors} ({formatPercent(item.errorRate)})
        </dd>
        <dt>p50</dt>
        <dd>{formatMs(edge.p50Ms)}</dd>
        <dt>p95</dt>
        <dd>{formatMs(edge.p95Ms)}</dd>
        <dt>p99</dt>
        <dd>{formatMs(edge.p99Ms)}</dd>
      </dl>
      {finding ? (
        <div class="finding-inline">
          <SeverityBadge severity={finding.severity} /> {finding.summary}
        </div>
      ) : null}
      <p>
        <Link href={searchLink(edge.caller, range, edge.errors > 0)}>
          {edge.errors > 0 ? 'Failed' : 'Recent'} traces from {edge.caller}
        </Link>
      </p>
    </aside>
  );
}

function NodePanel({
  node,
  layout,
  range,
}: {
  node: MapNode;
  layout: MapLayout;
  range: { startMs: number; endMs: number };
}) {
  const outgoing = layout.edges.filter((edge) => edge.from === node);
  const incoming = layout.edges.filter((edge) => edge.to === node);
  return (
    <aside class="map-panel" data-testid="node-panel">
      <h3>{node.name}</h3>
      {node.culprit ? (
        <div class="finding-inline">
          <SeverityBadge severity={node.culprit.severity} /> {node.culprit.summary}
        </div>
      ) : null}
      <p data-testid="node-calls">
        {incoming.length > 0
          ? `Called ${incoming.reduce((sum, edge) => sum + edge.edge.calls, 0)} times by ${incoming.map((edge) => edge.from.name).join(', ')}`
          : 'An entry point: no traced service calls it'}
        ; makes {outgoing.reduce((sum, edge) => sum + edge.edge.calls, 0)} calls.
      </p>
      {node.virtual ? null : (
        <p>
          <Link href={searchLink(node.name, range, false)}>Traces of {node.name}</Link>
        </p>
      )}
    </aside>
  );
}

function MapView({
  layout,
  range,
}: {
  layout: MapLayout;
  range: { startMs: number; endMs: number };
}) {
  const [selected, setSelected] = useState<MapEdge | MapNode | undefined>();
  if (layout.nodes.length === 0)
    return <p class="muted">No calls between services in this time range.</p>;
  return (
    <div class="map-wrap">
      <svg
        class="service-map"
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="img"
        aria-label="Service map"
      >
        <defs>
          {['normal', 'failing', 'slow'].map((kind) => (
            <marker
              id={`arrow-${kind}`}
              viewBox="0 0 10 10"
              refX="8"
              refY="5"
              markerWidth="5"
              markerHeight="5"
              orient="auto-start-reverse"
            >
              <path d="M 0 0 L 10 5 L 0 10 z" class={`arrow ${kind}`} />
            </marker>
          ))}
        </defs>
        {layout.edges.map((item) => {
          let kind = 'normal';
          if (item.failing) kind = 'failing';
          else if (item.slow) kind = 'slow';
          return (
            <g
              class={`edge ${kind} ${selected === item ? 'selected' : ''}`}
              data-testid="map-edge"
              data-edge={`${item.edge.caller}->${item.edge.callee}`}
              onClick={() => setSelected(item)}
            >
              <path d={edgePath(item)} class="edge-hit" />
              <path
                d={edgePath(item)}
                class="edge-line"
                style={{ strokeWidth: item.width }}
                marker-end={`url(#arrow-${kind})`}
              />
              <title>
                {item.edge.caller} → {item.edge.callee}: {item.edge.calls} calls, {item.edge.errors}{' '}
                errors
              </title>
            </g>
          );
        })}
        {layout.nodes.map((node) => (
          <g
            class={`node ${node.culprit ? `culprit ${node.culprit.kind}` : ''} ${node.virtual ? 'virtual' : ''}`}
            data-testid="map-node"
            data-node={node.name}
            transform={`translate(${node.x} ${node.y})`}
            onClick={() => setSelected(node)}
          >
            <circle r={node.radius} />
            <text y={node.radius + 16} text-anchor="middle">
              {node.name}
            </text>
            {node.culprit ? (
              <text y={-node.radius - 8} text-anchor="middle" class="culprit-label">
                {node.culprit.kind === 'latency_outlier' ? 'slow' : 'failing'}
              </text>
            ) : null}
          </g>
        ))}
      </svg>
      {selected && 'edge' in selected ? <EdgePanel item={selected} range={range} /> : null}
      {selected && 'level' in selected ? (
        <NodePanel node={selected} layout={layout} range={range} />
      ) : null}
    </div>
  );
}

export function ServiceMapPage({ location }: { location: Location }) {
  const range = readRangeState(location.query, 15 * 60_000);
  const key = location.query.toString();
  const map = useApi(() => loadMap(range), [key]);
  const onRange = (next: RangeState) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(rangeQuery(next)))
      if (value) params.set(name, value);
    navigate(`/map?${params}`);
  };
  return (
    <div class="page">
      <h1>Service map</h1>
      <p class="muted">
        Edges are sized by calls; red edges fail (a failing-dependency finding or at least 5%
        errors), orange ones are latency outliers; a red ring marks a failing culprit and an orange
        one a slow culprit. Click an edge or a service for its figures.
      </p>
      <TimeRangeInputs value={range} onChange={onRange} />
      {map.error ? <ErrorBox error={map.error} /> : null}
      {!map.data && !map.error ? <Loading what="the service map" /> : null}
      {map.data ? <MapView layout={map.data.layout} range={map.data.range} key={key} /> : null}
    </div>
  );
}
