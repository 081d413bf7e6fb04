import fs from 'node:fs';
import path from 'node:path';
import { FaultlineError } from '../errors';

const LOCK_FILE = 'faultline.lock';

/** An exclusive claim on an embedded data folder by this process. */
export interface DataDirLock {
  release(): void;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims `dataDir` for this process with a lock file holding its pid. The embedded
 * engine must not be opened by two processes at once, so a second process gets a clear
 * error instead. A lock left by a process that no longer runs is taken over.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);

  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return { release: () => releaseLock(lockPath) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(readLockOwner(lockPath), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isProcessAlive(owner)) {
      throw new FaultlineError(
        'FL_DATA_DIR_LOCKED',
        `data folder ${dataDir} is in use by process ${owner}; stop that process, or set FAULTLINE_DATA_DIR (--data-dir) to another folder, or FAULTLINE_CLICKHOUSE_URL to share a ClickHouse server`,
      );
    }
    if (owner === process.pid) {
      throw new FaultlineError(
        'FL_DATA_DIR_LOCKED',
        `data folder ${dataDir} is already open in this process; close the first storage before opening it again`,
      );
    }
    fs.rmSync(lockPath, { force: true });
  }
  throw new FaultlineError(
    'FL_DATA_DIR_LOCKED',
    `could not lock data folder ${dataDir}: ${lockPath} keeps reappearing`,
  );
}

function readLockOwner(lockPath: string): string {
  try {
    return fs.readFileSync(lockPath, 'utf8').trim();
  } catch {
    return '';
  }
}

function releaseLock(lockPath: string): void {
  if (readLockOwner(lockPath) === String(process.pid)) fs.rmSync(lockPath, { force: true });
}
