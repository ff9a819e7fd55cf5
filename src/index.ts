// slurmpool: multiprocessing.Pool for Node, on one machine or every node of a Slurm allocation.
export { Pool, type NodeInfo, type NodeStats, type RecordOptions } from './pool.js';
export type { TaskRecord } from './ordering.js';
export type { CommandResult } from './agent/shell.js';
export type { CommandItem } from './requests.js';
export { expandHostlist, compressHostlist, parseCountList, readAllocation, SlurmParseError, type Allocation } from './slurm/index.js';
export type { PoolOptions, MapOptions, Mode, EmulateSpec, SshOptions, JoinOptions, GrowOptions } from './options.js';
export {
  SlurmpoolError,
  TaskError,
  OptionError,
  PoolClosedError,
  LaunchError,
  ProtocolError,
  AbortError,
  type ErrorCode,
  type ErrorRecord,
  type TaskFailure,
} from './errors.js';
export { THREAD_VARIABLES } from './agent/threads.js';
export type { SharedRef } from './shared.js';
export type { TaskName, TaskArgs, TaskItem, TaskResult, Items, Wire, UntypedModule } from './task-types.js';
