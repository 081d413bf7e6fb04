import { render } from 'preact';
import { Link, navigate, useLocation } from './router';
import { ReportPage } from './pages/report';
import { SearchPage } from './pages/search';
import { ServiceMapPage } from './pages/service-map';
import { TracePage } from './pages/trace';
import './styles.css';

const NAV = [
  ['/search', 'Search'],
  ['/map', 'Service map'],
  ['/report', 'Report'],
] as const;

function Page() {
  const location = useLocation();
  const trace = /^\/trace\/([0-9a-fA-F]{1,32})\/?$/.exec(location.path);
  if (trace) return <TracePage traceId={trace[1].toLowerCase()} />;
  if (location.path.startsWith('/map')) return <ServiceMapPage location={location} />;
  if (location.path.startsWith('/report')) return <ReportPage location={location} />;
  if (location.path === '/' || location.path.startsWith('/search')) {
    return <SearchPage location={location} />;
  }
  return (
    <div class="page">
      <h1>Page not found</h1>
      <p>
        {location.path} is not a page of Faultline. <Link href="/search">Find traces</Link>.
      </p>
    </div>
  );
}

function App() {
  const location = useLocation();
  return (
    <>
      <header class="top">
        <span class="brand">Faultline</span>
        <nav>
          {NAV.map(([href, label]) => (
            <Link href={href} class={location.path.startsWith(href) ? 'active' : ''}>
              {label}
            </Link>
          ))}
        </nav>
        <form
          class="trace-lookup"
          onSubmit={(event) => {
            event.preventDefault();
            const input = (event.currentTarget as HTMLFormElement).elements.namedItem(
              'traceId',
            ) as HTMLInputElement;
            const id = input.value.trim();
            if (/^[0-9a-fA-F]{1,32}$/.test(id)) navigate(`/trace/${id.toLowerCase()}`);
          }}
        >
          <input name="traceId" placeholder="Trace id" aria-label="Open trace by id" />
        </form>
      </header>
      <main>
        <Page />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
