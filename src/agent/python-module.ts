// Whether a task module is Python, without loading the Python slots (a JS pool never needs them).
import { fileURLToPath } from 'node:url';

export function isPythonModule(module: string | null): boolean {
  return module !== null && /\.py$/i.test(module.startsWith('file:') ? fileURLToPath(module) : module);
}
