import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { DockerApiError } from '../errors.js';
import type { HostCommands } from '../host-commands.js';

const SANDBOX_START_TIMEOUT_MS = 600_000;

export interface AppProcess {
  /** The exit status `docker run` ended with (the app's, or 125–127 for Docker's own errors). */
  readonly exited: Promise<number>;
  /** The app container's id, once Docker has created it; undefined when it never was. */
  readonly containerId: Promise<string | undefined>;
  signal(signal: NodeJS.Signals): void;
}

/** The containers `run` starts: the app, attached, and its sandbox, detached. */
export interface AppRunner {
  /** `cidfile`: where Docker writes the app's id (the user's --cidfile), else a file of dockcni's own. */
  start(dockerRunArgs: readonly string[], cidfile?: string): AppProcess;
  /** `docker run -d`: resolves to the container id. */
  runDetached(dockerRunArgs: readonly string[]): Promise<string>;
  /** `docker rm -f`; a container already gone is not an error. */
  remove(id: string): Promise<void>;
}

/**
 * Containers start through the docker CLI: for the app, streaming, `-it`, signal proxying and every
 * `docker run` flag behave exactly as users know them; the sandbox starts while dockcni is still loading
 * its engine. No shell: the arguments go as a list. node:child_process, not execa: loading execa cost
 * `dockcni run` more than the rest of its start-up.
 */
export class DockerCliRunner implements AppRunner {
  /** `env`: what the docker CLI needs to reach the endpoint dockcni's API client uses (`dockerCliEnv`). */
  constructor(private readonly env: Readonly<Record<string, string>>, private readonly commands: HostCommands) {}

  start(dockerRunArgs: readonly string[], cidfile?: string): AppProcess {
    const own = cidfile === undefined ? mkdtempSync(path.join(tmpdir(), 'dockcni-run-')) : undefined;
    const file = cidfile ?? path.join(own ?? '', 'cid');
    const child = spawn('docker', ['run', `--cidfile=${file}`, ...dockerRunArgs], { stdio: 'inherit', env: { ...process.env, ...this.env } });
    // As a shell reports it: the CLI's status, or 128 + the signal that ended it; 127 when it could not start.
    const exited = new Promise<number>((resolve) => {
      child.once('error', () => resolve(127));
      child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 15) : 1)));
    });
    let over = false;
    void exited.then(() => { over = true; });
    // The docker CLI writes the file once the container is created, before it starts it.
    const containerId = (async () => {
      try {
        for (;;) {
          const id = (await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => { if (error.code === 'ENOENT') return ''; throw error; })).trim();
          if (/^[0-9a-f]{64}$/.test(id)) return id;
          if (over) return undefined;
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        if (own !== undefined) await exited.then(() => rm(own, { recursive: true, force: true }));
      }
    })();
    return { exited, containerId, signal: (signal) => { child.kill(signal); } };
  }

  async runDetached(dockerRunArgs: readonly string[]): Promise<string> {
    // Its own process group: a Ctrl-C meant for the app must not cut the sandbox's creation short.
    // A pull may come first: bounded by the time a slow registry could take, not by a host program's.
    const r = await this.commands.run('docker', ['run', '-d', ...dockerRunArgs], { env: this.env, detached: true, timeoutMs: SANDBOX_START_TIMEOUT_MS });
    // A pull may print progress first: the id is the last line.
    const id = r.stdout.trim().split('\n').pop() ?? '';
    if (r.exitCode !== 0 || !/^[0-9a-f]{64}$/.test(id)) {
      throw new DockerApiError(`docker run -d failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`, undefined);
    }
    return id;
  }

  async remove(id: string): Promise<void> {
    const r = await this.commands.run('docker', ['rm', '-f', '-v', id], { env: this.env });
    if (r.exitCode !== 0 && !/No such container|is already in progress/.test(r.stderr)) {
      throw new DockerApiError(`docker rm -f ${id.slice(0, 12)} failed: ${r.stderr.trim()}`, undefined);
    }
  }
}
