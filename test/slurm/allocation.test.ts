// readAllocation on verbatim environment captures from a real Slurm 22.05.8 cluster
// (test/fixtures/slurm-env/*.env, each headed by the command that made it), then every error.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALLOCATION_VARIABLES, SlurmParseError, readAllocation, type Allocation } from '../../dist/slurm/index.js';

/** A captured environment: `NAME=value` lines, `#` lines are comments. */
function fixture(name: string): Record<string, string> {
  const text = readFileSync(new URL(`../fixtures/slurm-env/${name}.env`, import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function thrown(fn: () => unknown): SlurmParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SlurmParseError);
    return e as SlurmParseError;
  }
  throw new Error('expected a SlurmParseError, nothing was thrown');
}

/** The fields every capture of the batch script shares; each case overrides what differs. */
const BATCH = {
  nodeName: 'gpu09',
  batchNode: 'gpu09',
  submitDir: '/tmp/spcap',
  cpusPerTask: null,
  ntasks: null,
  memPerNodeMB: null,
  stepId: null,
  endTime: null,
  launchNodeAddr: null,
} as const;

const SOURCES = {
  jobId: 'SLURM_JOB_ID',
  nodes: 'SLURM_JOB_NODELIST',
  numNodes: 'SLURM_JOB_NUM_NODES',
  cpusPerNode: 'SLURM_JOB_CPUS_PER_NODE',
  tasksPerNode: 'SLURM_TASKS_PER_NODE',
  batchNode: 'SLURM_JOB_NODELIST',
  submitDir: 'SLURM_SUBMIT_DIR',
} as const;

describe('readAllocation on captured environments', () => {
  const cases: Array<[string, Allocation]> = [
    [
      'sbatch-N3',
      {
        ...BATCH,
        jobId: '1',
        nodes: ['gpu09', 'gpu10', 'n1'],
        numNodes: 3,
        cpusPerNode: [1, 1, 1],
        tasksPerNode: [1, 1, 1],
        cpusOnNode: 1,
        sources: { ...SOURCES, cpusOnNode: 'SLURM_CPUS_ON_NODE', nodeName: 'SLURMD_NODENAME' },
      },
    ],
    [
      'sbatch-N5',
      {
        ...BATCH,
        jobId: '2',
        nodes: ['gpu09', 'gpu10', 'n1', 'n2', 'n3'],
        numNodes: 5,
        cpusPerNode: [1, 1, 1, 1, 1],
        tasksPerNode: [1, 1, 1, 1, 1],
        cpusOnNode: 1,
        sources: { ...SOURCES, cpusOnNode: 'SLURM_CPUS_ON_NODE', nodeName: 'SLURMD_NODENAME' },
      },
    ],
    [
      'sbatch-N5-exclusive',
      {
        ...BATCH,
        jobId: '7',
        nodes: ['gpu09', 'gpu10', 'n1', 'n2', 'n3'],
        numNodes: 5,
        cpusPerNode: [4, 4, 2, 2, 2],
        tasksPerNode: [4, 4, 2, 2, 2],
        cpusOnNode: 4,
        sources: { ...SOURCES, cpusOnNode: 'SLURM_CPUS_ON_NODE', nodeName: 'SLURMD_NODENAME' },
      },
    ],
    [
      'sbatch-N2-n3',
      {
        ...BATCH,
        jobId: '3',
        nodes: ['gpu09', 'gpu10'],
        numNodes: 2,
        cpusPerNode: [2, 1],
        tasksPerNode: [2, 1],
        ntasks: 3,
        cpusOnNode: 2,
        sources: { ...SOURCES, ntasks: 'SLURM_NTASKS', cpusOnNode: 'SLURM_CPUS_ON_NODE', nodeName: 'SLURMD_NODENAME' },
      },
    ],
    [
      'sbatch-n9',
      {
        ...BATCH,
        jobId: '8',
        nodes: ['gpu09', 'gpu10', 'n1'],
        numNodes: 3,
        cpusPerNode: [4, 4, 1],
        tasksPerNode: [4, 4, 1],
        ntasks: 9,
        cpusOnNode: 4,
        sources: { ...SOURCES, ntasks: 'SLURM_NTASKS', cpusOnNode: 'SLURM_CPUS_ON_NODE', nodeName: 'SLURMD_NODENAME' },
      },
    ],
    [
      'sbatch-N3-c2-mem',
      {
        ...BATCH,
        jobId: '4',
        nodes: ['gpu09', 'gpu10', 'n1'],
        numNodes: 3,
        cpusPerNode: [2, 2, 2],
        tasksPerNode: [1, 1, 1],
        cpusPerTask: 2,
        ntasks: 3,
        cpusOnNode: 2,
        memPerNodeMB: 500,
        sources: {
          ...SOURCES,
          cpusPerTask: 'SLURM_CPUS_PER_TASK',
          ntasks: 'SLURM_NTASKS',
          cpusOnNode: 'SLURM_CPUS_ON_NODE',
          memPerNodeMB: 'SLURM_MEM_PER_NODE',
          nodeName: 'SLURMD_NODENAME',
        },
      },
    ],
    [
      // Task 0 of `srun -N2 -n2` in a 3-node job: SLURM_TASKS_PER_NODE describes the step's 2 nodes.
      'srun-step',
      {
        ...BATCH,
        jobId: '5',
        nodes: ['gpu09', 'gpu10', 'n2'],
        numNodes: 3,
        cpusPerNode: [1, 1, 1],
        tasksPerNode: [1, 1],
        ntasks: 2,
        cpusOnNode: 1,
        stepId: '0',
        launchNodeAddr: '127.0.0.1',
        sources: {
          ...SOURCES,
          ntasks: 'SLURM_NTASKS',
          cpusOnNode: 'SLURM_CPUS_ON_NODE',
          nodeName: 'SLURMD_NODENAME',
          stepId: 'SLURM_STEP_ID',
          launchNodeAddr: 'SLURM_LAUNCH_NODE_IPADDR',
        },
      },
    ],
    [
      // salloc's shell runs on the submit host: no SLURMD_NODENAME, no SLURM_CPUS_ON_NODE.
      'salloc-N2',
      {
        ...BATCH,
        jobId: '6',
        nodes: ['gpu09', 'gpu10'],
        numNodes: 2,
        cpusPerNode: [1, 1],
        tasksPerNode: [1, 1],
        cpusOnNode: null,
        nodeName: null,
        sources: { ...SOURCES },
      },
    ],
    [
      'salloc-N3-n4',
      {
        ...BATCH,
        jobId: '9',
        nodes: ['gpu09', 'gpu10', 'n1'],
        numNodes: 3,
        cpusPerNode: [2, 1, 1],
        tasksPerNode: [2, 1, 1],
        ntasks: 4,
        cpusOnNode: null,
        nodeName: null,
        sources: { ...SOURCES, ntasks: 'SLURM_NTASKS' },
      },
    ],
  ];
  it.each(cases)('%s', (name, expected) => {
    const env = fixture(name);
    const before = { ...env };
    expect(readAllocation(env)).toEqual(expected);
    expect(env).toEqual(before);
  });

  it('reads every SLURM_* variable it uses from the list it exports', () => {
    for (const [name] of cases) {
      const env = fixture(name);
      const used = Object.fromEntries(ALLOCATION_VARIABLES.flatMap((v) => (env[v] === undefined ? [] : [[v, env[v]]])));
      expect(readAllocation(used)).toEqual(readAllocation(env));
    }
  });
});

describe('readAllocation on environments of the kind SLURM-NOTES.md describes', () => {
  it('sbatch -N3 on n[1-3] with 1 CPU each', () => {
    const a = readAllocation({
      SLURM_JOB_ID: '42',
      SLURM_JOB_NODELIST: 'n[1-3]',
      SLURM_JOB_NUM_NODES: '3',
      SLURM_JOB_CPUS_PER_NODE: '1(x3)',
      SLURM_TASKS_PER_NODE: '1(x3)',
      SLURM_CPUS_ON_NODE: '1',
      SLURMD_NODENAME: 'n1',
    });
    expect(a?.nodes).toEqual(['n1', 'n2', 'n3']);
    expect(a?.cpusPerNode).toEqual([1, 1, 1]);
    expect(a?.batchNode).toBe('n1');
    expect(a?.nodeName).toBe('n1');
  });

  it('uneven nodes: 2,1', () => {
    const a = readAllocation({ SLURM_JOB_ID: '43', SLURM_JOB_NODELIST: 'n[1-2]', SLURM_JOB_CPUS_PER_NODE: '2,1' });
    expect(a?.cpusPerNode).toEqual([2, 1]);
    expect(a?.numNodes).toBe(2);
    expect(a?.sources.numNodes).toBe('SLURM_JOB_NODELIST');
    expect(a?.tasksPerNode).toBeNull();
  });

  it('padded names and several groups: n[01-04,07],gpu[1-2]', () => {
    const a = readAllocation({
      SLURM_JOB_ID: '44',
      SLURM_JOB_NODELIST: 'n[01-04,07],gpu[1-2]',
      SLURM_JOB_NUM_NODES: '7',
      SLURM_JOB_CPUS_PER_NODE: '40(x4),20,80(x2)',
    });
    expect(a?.nodes).toEqual(['n01', 'n02', 'n03', 'n04', 'n07', 'gpu1', 'gpu2']);
    expect(a?.cpusPerNode).toEqual([40, 40, 40, 40, 20, 80, 80]);
  });

  it('falls back to the older names SLURM_JOBID, SLURM_NODELIST, SLURM_NPROCS, SLURM_STEPID', () => {
    const a = readAllocation({
      SLURM_JOBID: '45',
      SLURM_NODELIST: 'n1',
      SLURM_JOB_CPUS_PER_NODE: '4',
      SLURM_NPROCS: '4',
      SLURM_STEPID: '2',
    });
    expect(a).toMatchObject({ jobId: '45', nodes: ['n1'], ntasks: 4, stepId: '2' });
    expect(a?.sources).toMatchObject({ jobId: 'SLURM_JOBID', nodes: 'SLURM_NODELIST', ntasks: 'SLURM_NPROCS', stepId: 'SLURM_STEPID' });
  });

  it('prefers SLURM_JOB_NODELIST (the job) over SLURM_NODELIST', () => {
    const a = readAllocation({
      SLURM_JOB_ID: '46',
      SLURM_JOB_NODELIST: 'n[1-3]',
      SLURM_NODELIST: 'n[1-2]',
      SLURM_JOB_CPUS_PER_NODE: '1(x3)',
    });
    expect(a?.nodes).toEqual(['n1', 'n2', 'n3']);
  });

  it('reads SLURM_JOB_END_TIME (epoch seconds) as epoch milliseconds', () => {
    const a = readAllocation({ SLURM_JOB_ID: '47', SLURM_JOB_NODELIST: 'n1', SLURM_JOB_CPUS_PER_NODE: '1', SLURM_JOB_END_TIME: '1716400000' });
    expect(a?.endTime).toBe(1716400000000);
    expect(a?.sources.endTime).toBe('SLURM_JOB_END_TIME');
  });

  it('accepts SLURM_MEM_PER_NODE=0', () => {
    const a = readAllocation({ SLURM_JOB_ID: '48', SLURM_JOB_NODELIST: 'n1', SLURM_JOB_CPUS_PER_NODE: '1', SLURM_MEM_PER_NODE: '0' });
    expect(a?.memPerNodeMB).toBe(0);
  });

  it('treats empty variables as unset', () => {
    const a = readAllocation({
      SLURM_JOB_ID: '49',
      SLURM_JOB_NODELIST: 'n1',
      SLURM_JOB_CPUS_PER_NODE: '1',
      SLURM_CPUS_PER_TASK: '',
      SLURMD_NODENAME: '',
    });
    expect(a?.cpusPerTask).toBeNull();
    expect(a?.nodeName).toBeNull();
    expect(a?.sources).not.toHaveProperty('cpusPerTask');
  });
});

describe('readAllocation outside a job', () => {
  it('returns null without SLURM_JOB_ID', () => {
    expect(readAllocation({})).toBeNull();
    expect(readAllocation({ SLURM_JOB_ID: '' })).toBeNull();
    expect(readAllocation({ SLURM_JOB_NODELIST: 'n[1-3]', SLURM_CONF: '/etc/slurm/slurm.conf' })).toBeNull();
  });

  it('reads process.env by default', () => {
    expect(readAllocation()).toEqual(readAllocation(process.env));
  });
});

describe('readAllocation errors', () => {
  const base = { SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'n[1-3]', SLURM_JOB_CPUS_PER_NODE: '1(x3)' };
  const cases: Array<[string, Record<string, string>, string, string]> = [
    ['a malformed job id', { SLURM_JOB_ID: '12a' }, 'SLURM_JOB_ID', 'SLURM_JOB_ID="12a" is malformed: expected a numeric job id'],
    ['a malformed old-style job id', { SLURM_JOB_ID: '', SLURM_JOBID: 'x' }, 'SLURM_JOBID', 'SLURM_JOBID="x" is malformed: expected a numeric job id'],
    [
      'no node list',
      { SLURM_JOB_NODELIST: '' },
      'SLURM_JOB_NODELIST',
      'SLURM_JOB_NODELIST is not set (nor SLURM_NODELIST), though SLURM_JOB_ID="5" says this is a Slurm job',
    ],
    ['a malformed node list', { SLURM_JOB_NODELIST: 'n[3-1]' }, 'SLURM_JOB_NODELIST', 'SLURM_JOB_NODELIST="n[3-1]" is malformed: range 3-1 is descending'],
    [
      'text after a bracket',
      { SLURM_JOB_NODELIST: 'gpu[1-2]-ib' },
      'SLURM_JOB_NODELIST',
      'SLURM_JOB_NODELIST="gpu[1-2]-ib" is malformed: text "-ib" follows the last "]" in "gpu[1-2]-ib" (Slurm 22.05 allows brackets only at the end of a name)',
    ],
    [
      'a malformed old-style node list',
      { SLURM_JOB_NODELIST: '', SLURM_NODELIST: 'n[1-3' },
      'SLURM_NODELIST',
      'SLURM_NODELIST="n[1-3" is malformed: "[" at position 1 is never closed',
    ],
    ['a node list without nodes', { SLURM_JOB_NODELIST: ',' }, 'SLURM_JOB_NODELIST', 'SLURM_JOB_NODELIST="," is malformed: it names no nodes'],
    [
      'a node listed twice',
      { SLURM_JOB_NODELIST: 'n[1-2],n1', SLURM_JOB_CPUS_PER_NODE: '1(x3)' },
      'SLURM_JOB_NODELIST',
      'SLURM_JOB_NODELIST="n[1-2],n1" is malformed: node n1 appears more than once',
    ],
    [
      'a node count that disagrees',
      { SLURM_JOB_NUM_NODES: '4' },
      'SLURM_JOB_NUM_NODES',
      'SLURM_JOB_NUM_NODES="4" disagrees with SLURM_JOB_NODELIST="n[1-3]", which names 3 nodes',
    ],
    [
      'a node count that disagrees with one node',
      { SLURM_JOB_NODELIST: 'n1', SLURM_JOB_NUM_NODES: '2', SLURM_JOB_CPUS_PER_NODE: '1' },
      'SLURM_JOB_NUM_NODES',
      'SLURM_JOB_NUM_NODES="2" disagrees with SLURM_JOB_NODELIST="n1", which names 1 node',
    ],
    ['a malformed node count', { SLURM_JOB_NUM_NODES: 'three' }, 'SLURM_JOB_NUM_NODES', 'SLURM_JOB_NUM_NODES="three" is malformed: expected a positive integer'],
    ['a node count of 0', { SLURM_JOB_NUM_NODES: '0' }, 'SLURM_JOB_NUM_NODES', 'SLURM_JOB_NUM_NODES="0" is malformed: expected a positive integer'],
    [
      'no CPU counts',
      { SLURM_JOB_CPUS_PER_NODE: '' },
      'SLURM_JOB_CPUS_PER_NODE',
      'SLURM_JOB_CPUS_PER_NODE is not set, though SLURM_JOB_ID="5" says this is a Slurm job',
    ],
    [
      'malformed CPU counts',
      { SLURM_JOB_CPUS_PER_NODE: '2(x3' },
      'SLURM_JOB_CPUS_PER_NODE',
      'SLURM_JOB_CPUS_PER_NODE="2(x3" is malformed: item "2(x3" is not a count N or a repeated count N(xM)',
    ],
    [
      'too few CPU counts',
      { SLURM_JOB_CPUS_PER_NODE: '2,1' },
      'SLURM_JOB_CPUS_PER_NODE',
      'SLURM_JOB_CPUS_PER_NODE="2,1" gives 2 counts but SLURM_JOB_NODELIST="n[1-3]" names 3 nodes',
    ],
    [
      'too many CPU counts',
      { SLURM_JOB_NODELIST: 'n1', SLURM_JOB_CPUS_PER_NODE: '1(x2)' },
      'SLURM_JOB_CPUS_PER_NODE',
      'SLURM_JOB_CPUS_PER_NODE="1(x2)" gives 2 counts but SLURM_JOB_NODELIST="n1" names 1 node',
    ],
    [
      'one CPU count for several nodes',
      { SLURM_JOB_CPUS_PER_NODE: '40' },
      'SLURM_JOB_CPUS_PER_NODE',
      'SLURM_JOB_CPUS_PER_NODE="40" gives 1 count but SLURM_JOB_NODELIST="n[1-3]" names 3 nodes',
    ],
    ['a node without CPUs', { SLURM_JOB_CPUS_PER_NODE: '1,0,1' }, 'SLURM_JOB_CPUS_PER_NODE', 'SLURM_JOB_CPUS_PER_NODE="1,0,1" is malformed: node n2 has 0 CPUs'],
    [
      'malformed task counts',
      { SLURM_TASKS_PER_NODE: '1(x)' },
      'SLURM_TASKS_PER_NODE',
      'SLURM_TASKS_PER_NODE="1(x)" is malformed: item "1(x)" is not a count N or a repeated count N(xM)',
    ],
    ['a malformed SLURM_CPUS_PER_TASK', { SLURM_CPUS_PER_TASK: 'two' }, 'SLURM_CPUS_PER_TASK', 'SLURM_CPUS_PER_TASK="two" is malformed: expected a positive integer'],
    ['SLURM_CPUS_PER_TASK=0', { SLURM_CPUS_PER_TASK: '0' }, 'SLURM_CPUS_PER_TASK', 'SLURM_CPUS_PER_TASK="0" is malformed: expected a positive integer'],
    ['a negative SLURM_NTASKS', { SLURM_NTASKS: '-1' }, 'SLURM_NTASKS', 'SLURM_NTASKS="-1" is malformed: expected a positive integer'],
    ['a malformed SLURM_NPROCS', { SLURM_NPROCS: '4 ' }, 'SLURM_NPROCS', 'SLURM_NPROCS="4 " is malformed: expected a positive integer'],
    ['a fractional SLURM_CPUS_ON_NODE', { SLURM_CPUS_ON_NODE: '1.5' }, 'SLURM_CPUS_ON_NODE', 'SLURM_CPUS_ON_NODE="1.5" is malformed: expected a positive integer'],
    ['a malformed SLURM_MEM_PER_NODE', { SLURM_MEM_PER_NODE: '4G' }, 'SLURM_MEM_PER_NODE', 'SLURM_MEM_PER_NODE="4G" is malformed: expected a non-negative integer'],
    ['a malformed SLURM_JOB_END_TIME', { SLURM_JOB_END_TIME: 'soon' }, 'SLURM_JOB_END_TIME', 'SLURM_JOB_END_TIME="soon" is malformed: expected a non-negative integer'],
    [
      'a huge SLURM_JOB_END_TIME',
      { SLURM_JOB_END_TIME: '99999999999999999999' },
      'SLURM_JOB_END_TIME',
      'SLURM_JOB_END_TIME="99999999999999999999" is malformed: expected a non-negative integer',
    ],
  ];
  it.each(cases)('%s', (_what, change, variable, message) => {
    const e = thrown(() => readAllocation({ ...base, ...change }));
    expect(e.message).toBe(message);
    expect(e.variable).toBe(variable);
    expect(e.code).toBe('ESLURMPARSE');
    expect(e.name).toBe('SlurmParseError');
    const value = { ...base, ...change }[variable];
    expect(e.value).toBe(value === '' ? undefined : value);
  });

  it('errors on a captured environment with a broken variable', () => {
    const env = { ...fixture('sbatch-N5-exclusive'), SLURM_JOB_CPUS_PER_NODE: '4(x2),2(x2)' };
    expect(thrown(() => readAllocation(env)).message).toBe(
      'SLURM_JOB_CPUS_PER_NODE="4(x2),2(x2)" gives 4 counts but SLURM_JOB_NODELIST="gpu[09-10],n[1-3]" names 5 nodes',
    );
  });
});
