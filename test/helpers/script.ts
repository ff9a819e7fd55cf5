// Run an ES module script in a child node that must exit by itself: what keeps a process alive shows as a time-out.
import { spawn } from 'node:child_process';

/** Run `code` with `node --input-type=module -e`; it must exit within `bound` ms, else it is killed and this rejects saying `why`. */
export function runScript(code: string, bound: number, why = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the script did not exit within ${bound} ms${why ? ` (${why})` : ''}:\n${stdout}\n${stderr}`));
    }, bound);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout, stderr });
    });
  });
}
