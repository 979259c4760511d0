import type { CommandOptions, CommandRun, HostCommands } from '../../src/host-commands.js';

/** Host programs for unit tests: each call recorded, answered by `answer` (exit 0, no output, unless it says otherwise). */
export class FakeCommands implements HostCommands {
  readonly calls: string[] = [];

  constructor(private readonly answer: (file: string, args: readonly string[]) => Partial<CommandRun> = () => ({})) {}

  async run(file: string, args: readonly string[], _options?: CommandOptions): Promise<CommandRun> {
    this.calls.push([file, ...args].join(' '));
    return { exitCode: 0, stdout: '', stderr: '', ...this.answer(file, args) };
  }
}
