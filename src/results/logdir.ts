// Where a task's large stdout/stderr goes under --log-dir: one subfolder per 1,000 task indices.

/** Task indices per subfolder: 100,000 tasks make 100 folders of 1,000 files, not one huge directory. */
export const TASKS_PER_FOLDER = 1000;

/** Path, relative to the log directory, of a task's `out` or `err` file: `12/12345.out`. */
export function logFileName(index: number, stream: 'out' | 'err'): string {
  return `${Math.floor(index / TASKS_PER_FOLDER)}/${index}.${stream}`;
}
