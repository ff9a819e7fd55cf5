// A typed task module for the compile-only type tests.
export const square = (x: number): number => x * x;
export const greet = (name: string, times: number): string => name.repeat(times);
export async function when(ms: number): Promise<Date> {
  return new Date(ms);
}
export const counts = (words: string[]): Map<string, number> => new Map(words.map((w) => [w, w.length]));
export const point = (x: number) => ({ x, label: undefined as string | undefined, norm() { return Math.abs(x); } });
export const bytes = (n: number): Float64Array => new Float64Array(n);
export const tags = (): Set<string> => new Set(['a']);
export const noArgs = (): boolean => true;
export const notATask = 42;
