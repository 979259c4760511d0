#!/usr/bin/env node
// Prepares the sidecar image's build context: `npm pack` of this checkout, its production dependencies
// installed from the local npm cache when possible, and the Dockerfile. Prints the directory.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const out = mkdtempSync(path.join(tmpdir(), 'dockcni-image-'));
const quiet = { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' };
const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { ...quiet, cwd: repo }).trim().split('\n').at(-1);
execFileSync('tar', ['-xzf', path.join(out, tarball), '-C', out]);
copyFileSync(path.join(repo, 'package-lock.json'), path.join(out, 'package', 'package-lock.json'));
execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { ...quiet, cwd: path.join(out, 'package') });
copyFileSync(path.join(repo, 'examples/compose/Dockerfile'), path.join(out, 'Dockerfile'));
process.stdout.write(`${out}\n`);
