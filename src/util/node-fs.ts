// node:fs for the modules every pool loads at start-up (and every worker thread), through require.
// On Node 20 an ES module import of node:fs costs 3–5 ms in each thread (its namespace reads every
// export, fs.promises among them, which loads the promise API); require hands back the object Node
// has already loaded. Other modules import node:fs as usual.
import { createRequire } from 'node:module';

const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

export const { accessSync, closeSync, constants, existsSync, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } = fs;
