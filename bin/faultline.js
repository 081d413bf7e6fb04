#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so that a fresh clone needs no build step.
require('tsx/cjs');
require('../cli/main.ts').main(process.argv);
