import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../lib/errors';

describe('error code documentation', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'errors.md'), 'utf8');
  const documented = new Map(
    [...doc.matchAll(/^\| `(FL_[A-Z_]+)` \| (\d{3}) \|/gm)].map((match) => [
      match[1],
      Number(match[2]),
    ]),
  );

  it('lists every code with its status', () => {
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      expect([code, documented.get(code)]).toEqual([code, status]);
    }
  });

  it('lists no code the program lacks', () => {
    const known = new Set([...Object.keys(ERROR_CODES), 'FL_INTERNAL']);
    for (const code of documented.keys()) {
      expect([code, known.has(code)]).toEqual([code, true]);
    }
  });
});
