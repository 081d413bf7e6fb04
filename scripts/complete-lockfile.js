#!/usr/bin/env node
// npm records only the chdb engine package of the platform it ran on, and the registry
// this project installs from serves only the linux-x64 one. `npm ci` then rejects the
// lockfile because the other platforms' optional packages are missing from it. This
// adds an entry for each of them, limited to its os and cpu, so that `npm ci` skips
// them everywhere else. Run it after every `npm install` that rewrites the lockfile.
const fs = require('node:fs');
const path = require('node:path');

const lockPath = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const packages = lock.packages;
const chdb = packages['node_modules/chdb'];
if (!chdb || !chdb.optionalDependencies) {
  console.error('complete-lockfile: chdb is not in package-lock.json; nothing to do');
  process.exit(0);
}

const PLATFORMS = {
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
};

let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies)) {
  const key = `node_modules/${name}`;
  if (packages[key]) continue;
  const platform = PLATFORMS[name.replace('@chdb/lib-', '')];
  if (!platform) {
    console.error(`complete-lockfile: unknown chdb platform package ${name}; add it to PLATFORMS`);
    process.exit(1);
  }
  packages[key] = { version, license: 'Apache-2.0', optional: true, ...platform };
  added += 1;
}

const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
lock.packages = sorted;
fs.writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform entries`);
