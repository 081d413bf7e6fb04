import fs from 'node:fs';
import path from 'node:path';

/**
 * Returns the folder where `writeSpans` writes each batch as a file for ClickHouse's
 * file() table function. Each file exists only while its insert runs.
 */
export function insertFilesDir(dataDir: string): string {
  return path.join(dataDir, 'insert-files');
}

/**
 * Removes batch files left by a process that stopped during an insert. Call it only
 * while holding the data folder lock, because the lock holder's inserts read them.
 */
export function removeInsertFiles(dataDir: string): void {
  fs.rmSync(insertFilesDir(dataDir), { recursive: true, force: true });
}
