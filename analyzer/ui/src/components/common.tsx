import { useState } from 'preact/hooks';
import { ApiError, storeToken, storedToken } from '../api';

/** Shows an API error with its code, or the query-token form for a 401. */
export function ErrorBox({ error }: { error: Error }) {
  if (error instanceof ApiError && error.status === 401)
    return <TokenForm message={error.message} />;
  const code = error instanceof ApiError ? error.code : 'ERROR';
  return (
    <div class="error-box" role="alert">
      <strong>{code}</strong> {error.message}
    </div>
  );
}

/** Asks for the bearer token that the analyzer's FAULTLINE_QUERY_TOKENS accepts. */
export function TokenForm({ message }: { message: string }) {
  const [token, setToken] = useState('');
  const onSubmit = (event: Event) => {
    event.preventDefault();
    storeToken(token.trim());
    window.location.reload();
  };
  return (
    <form class="token-form" onSubmit={onSubmit} aria-label="Query token">
      <p>This analyzer requires a query token. {message}</p>
      {storedToken() ? <p>The stored token was rejected.</p> : null}
      <input
        type="password"
        name="token"
        placeholder="Query token"
        value={token}
        onInput={(event) => setToken((event.target as HTMLInputElement).value)}
        autoComplete="off"
      />
      <button type="submit">Use token</button>
    </form>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function SeverityBadge({ severity }: { severity: string }) {
  return <span class={`badge severity-${severity}`}>{severity}</span>;
}
