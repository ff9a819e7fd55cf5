// Unknown options are refused with the nearest valid name; `env` (where settings are read) no longer replaces the workers' environment.
import { describe, expect, it } from 'vitest';
import { OptionError, Pool } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

describe('unknown options', () => {
  it('Pool.open names the nearest valid option', async () => {
    await expect(Pool.open({ module: tasks, wokers: 2 } as never)).rejects.toThrow(new OptionError('options.wokers is not an option; did you mean workers?'));
    await expect(Pool.open({ module: tasks, Workers: 2 } as never)).rejects.toThrow('options.Workers is not an option; did you mean workers?');
    await expect(Pool.open({ module: tasks, intArgs: [] } as never)).rejects.toThrow('options.intArgs is not an option; did you mean initArgs?');
    await expect(Pool.open({ module: tasks, ssh: { prot: 22 } } as never)).rejects.toThrow('options.ssh.prot is not an option; did you mean port?');
  });

  it('Pool.open says where a call option belongs', async () => {
    await expect(Pool.open({ module: tasks, chunkSize: 4 } as never)).rejects.toThrow('options.chunkSize is not an option; chunksize is an option of each call (map, imap, …), not of Pool.open');
  });

  it('Pool.open lists the options when nothing is near', async () => {
    await expect(Pool.open({ module: tasks, banana: 1 } as never)).rejects.toThrow(/^options\.banana is not an option \(valid: module, workers, .*signal, join, keepThreadEnv, onNodeLost, python, joinFile, grow\)$/);
  });

  it('map options and record options name the nearest valid one', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1 });
    await expect(pool.map('square', [1], { chunkSize: 2 } as never)).rejects.toThrow(new OptionError('map options.chunkSize is not an option; did you mean chunksize?'));
    await expect(pool.starmap('add', [[1, 2]], { timout: 5 } as never)).rejects.toThrow('map options.timout is not an option; did you mean timeout?');
    expect(() => pool.imap('square', [1], { chunk: 2 } as never)).toThrow('map options.chunk is not an option; did you mean chunksize?');
    expect(() => pool.imap('square', [1], { skip: new Set() } as never)).toThrow('map options.skip is not an option (valid: chunksize, timeout, signal)');
    expect(() => pool.imapRecords('square', [1], { skp: new Set() } as never)).toThrow('record options.skp is not an option; did you mean skip?');
    expect(() => pool.runCommands(['true'], { stars: true } as never)).toThrow('record options.stars is not an option; did you mean star?');
    await expect(pool.applyWith('add', [1, 2], { chunksize: 1 } as never)).rejects.toThrow('applyWith runs one task: options.chunksize does not apply');
    expect(await pool.applyWith('add', [1, 2], { timeout: 10_000 })).toBe(3);
    // A refused call leaves nothing behind: the pool still runs.
    expect(await pool.map('square', [3])).toEqual([9]);
  });
});

describe('env and taskEnv', () => {
  it('env is where settings are read; the workers keep process.env (PATH) and get taskEnv on top', async () => {
    await using pool = await Pool.open({ module: tasks, env: { SLURMPOOL_WORKERS: '2' }, taskEnv: { SLURMPOOL_TEST_VAR: 'yes' } });
    expect(pool.workers).toBe(2);
    const [path, added] = await pool.map('envOf', ['PATH', 'SLURMPOOL_TEST_VAR']);
    expect(path).toBe(process.env.PATH);
    expect(added).toBe('yes');
  });

  it('env and signal must be objects of the right kind', async () => {
    await expect(Pool.open({ module: tasks, env: 'x' } as never)).rejects.toThrow('options.env must be an object of variables, got "x"');
    await expect(Pool.open({ module: tasks, signal: {} } as never)).rejects.toThrow('options.signal must be an AbortSignal, got {}');
  });
});
