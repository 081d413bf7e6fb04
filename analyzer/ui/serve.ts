import fs from 'node:fs';
import path from 'node:path';
import express, { type Router } from 'express';
import { FaultlineError } from '../../lib/errors';

/** Folder of the built web UI, written by `npm run build:ui`. */
export const UI_DIST_DIR = path.join(__dirname, 'dist');

/** Paths that belong to the APIs, never to the single-page app. */
const API_PREFIXES = ['/api', '/jaeger', '/zipkin', '/healthz'];

function isApiPath(pathname: string): boolean {
  return API_PREFIXES.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`));
}

function notBuilt(distDir: string): FaultlineError {
  return new FaultlineError(
    'FL_UI_NOT_BUILT',
    `the web UI is not built: ${path.join(distDir, 'index.html')} is missing; run npm run build:ui (npm ci also builds it), then reload`,
  );
}

/**
 * Serves the built web UI: hashed assets with a long cache life, and `index.html` for
 * every other GET outside the API prefixes, so that the app's own routes load on reload.
 * When the bundle is missing, those requests get 503 `FL_UI_NOT_BUILT` with the command
 * that builds it.
 */
export function uiRouter(distDir = UI_DIST_DIR): Router {
  const router = express.Router();
  const indexFile = path.join(distDir, 'index.html');
  router.use(
    '/assets',
    express.static(path.join(distDir, 'assets'), { immutable: true, maxAge: '365d', index: false }),
  );
  router.use(express.static(distDir, { index: false, maxAge: 0 }));
  router.use((request, response, next) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || isApiPath(request.path)) {
      return next();
    }
    if (!fs.existsSync(indexFile)) {
      const error = notBuilt(distDir);
      response
        .status(error.httpStatus)
        .type('text/plain')
        .send(`${error.code}: ${error.message}\n`);
      return;
    }
    response.set('Cache-Control', 'no-cache');
    response.sendFile(indexFile);
  });
  return router;
}
