// Which stderr line names a failed agent: the agent's own reason, whatever order srun's lines came in.
import { describe, expect, it } from 'vitest';
import { describeFailure, orderStderrLines } from '../../src/launch/failure.js';

const agent = 'node n3: cannot start the agent (simulated: node binary missing)';
const srunExit = 'srun: error: n3: task 0: Exited with exit code 127';
const launch = 'srun: launch/slurm: _step_signal: Terminating StepId=12.3';

describe('orderStderrLines', () => {
  it('puts the agent\'s own line first when srun\'s generic line came first', () => {
    expect(orderStderrLines(`${srunExit}\n${agent}`)).toEqual([agent, srunExit]);
  });
  it('keeps the agent\'s own line first when it came first', () => {
    expect(orderStderrLines(`${agent}\n${srunExit}\n`)).toEqual([agent, srunExit]);
  });
  it('prefers the agent line over launch/slurm lines and stack frames, others keep arrival order', () => {
    const lines = [launch, '    at main (file:///x.js:1:1)', srunExit, 'Error: EACCES: permission denied, open \'/tmp/x\'', ''];
    expect(orderStderrLines(lines.join('\n'))).toEqual([lines[3], lines[0], lines[1], lines[2]]);
  });
  it('prefers a specific srun error over srun\'s generic exit line', () => {
    const specific = 'srun: error: Unable to create step for job 12: Invalid generic resource (gres) specification';
    expect(orderStderrLines(`${srunExit}\n${specific}`)).toEqual([specific, srunExit]);
  });
  it('is empty for blank stderr', () => {
    expect(orderStderrLines(' \n\n')).toEqual([]);
  });
});

describe('describeFailure', () => {
  it('is one line with the agent\'s reason first in either order', () => {
    const want = `${agent}; srun exited with status 127; ${srunExit}`;
    expect(describeFailure('srun exited with status 127', `${srunExit}\n${agent}`)).toBe(want);
    expect(describeFailure('srun exited with status 127', `${agent}\n${srunExit}`)).toBe(want);
  });
  it('leads with how the process ended when stderr holds only generic lines', () => {
    expect(describeFailure('srun exited with status 127', srunExit)).toBe(`srun exited with status 127; ${srunExit}`);
  });
  it('names what is known when only one of exit and stderr is', () => {
    expect(describeFailure('agent exited with status 2', '')).toBe('agent exited with status 2');
    expect(describeFailure(undefined, agent)).toBe(agent);
    expect(describeFailure(undefined, undefined)).toBeUndefined();
  });
});
