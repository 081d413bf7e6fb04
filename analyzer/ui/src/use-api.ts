import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

export interface Loadable<T> {
  data?: T;
  error?: ApiError | Error;
  loading: boolean;
}

/**
 * Runs `load` whenever a key changes and keeps its latest result. A response that
 * arrives after a newer request started is dropped.
 */
export function useApi<T>(load: () => Promise<T>, keys: unknown[]): Loadable<T> {
  const [state, setState] = useState<Loadable<T>>({ loading: true });
  useEffect(() => {
    let current = true;
    setState((previous) => ({ data: previous.data, loading: true }));
    load().then(
      (data) => current && setState({ data, loading: false }),
      (error: Error) => current && setState({ error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, keys);
  return state;
}
