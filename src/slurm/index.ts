// Reading a Slurm allocation: hostlists, count lists and SLURM_* variables. Pure functions, no I/O.
export {
  SlurmParseError,
  expandHostlist,
  compressHostlist,
  MAX_HOSTLIST_NAMES,
  MAX_HOSTS_PER_RANGE,
  type SlurmParseErrorDetails,
} from './hostlist.js';
export { parseCountList, formatCountList, MAX_COUNT_ENTRIES } from './counts.js';
export { readAllocation, ALLOCATION_VARIABLES, type Allocation, type SlurmEnv } from './allocation.js';
