// slurmpool: multiprocessing.Pool for Node, on one machine or every node of a Slurm allocation.
export { Pool, type NodeInfo } from './pool.js';
export type { PoolOptions, MapOptions, Mode, EmulateSpec } from './options.js';
export {
  SlurmpoolError,
  TaskError,
  OptionError,
  PoolClosedError,
  LaunchError,
  ProtocolError,
  type ErrorRecord,
  type TaskFailure,
} from './errors.js';
export { THREAD_VARIABLES } from './agent/threads.js';
