import { execa } from 'execa';

export interface AppProcess {
  /** The exit status `docker run` ended with (the app's, or 125–127 for Docker's own errors). */
  readonly exited: Promise<number>;
  signal(signal: NodeJS.Signals): void;
}

/** Starts the app container. */
export interface AppRunner {
  start(dockerRunArgs: readonly string[]): AppProcess;
}

/**
 * The app runs through the docker CLI, attached to this terminal: streaming, `-it`, signal proxying and
 * every `docker run` flag behave exactly as users know them. No shell: the arguments go as a list.
 */
export class DockerCliRunner implements AppRunner {
  constructor(private readonly dockerHost: string | undefined) {}

  start(dockerRunArgs: readonly string[]): AppProcess {
    const child = execa('docker', ['run', ...dockerRunArgs], {
      stdio: 'inherit',
      reject: false,
      env: this.dockerHost ? { DOCKER_HOST: this.dockerHost } : {},
    });
    return {
      exited: child.then((r) => r.exitCode ?? (r.signal ? 128 + 15 : 1)),
      signal: (signal) => { child.kill(signal); },
    };
  }
}
