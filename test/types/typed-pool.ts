// Compile-only checks (tsc --noEmit, run by test/api-types.test.ts): a typed pool checks names, arguments and results; an untyped pool compiles as before.
import { Pool, type Wire } from '../../dist/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): void {}

export async function typed(): Promise<void> {
  const pool = await Pool.open<typeof import('./tasks.js')>({ module: new URL('./tasks.js', import.meta.url) });

  const squares = await pool.map('square', [1, 2, 3]);
  expectType<Equal<typeof squares, number[]>>();
  for await (const s of pool.imap('square', [1, 2])) expectType<Equal<typeof s, number>>();
  for await (const s of pool.imapUnordered('greet', ['x'])) expectType<Equal<typeof s, string>>();
  const greetings = await pool.starmap('greet', [['a', 2], ['b', 3]]);
  expectType<Equal<typeof greetings, string[]>>();
  const one = await pool.apply('greet', 'a', 2);
  expectType<Equal<typeof one, string>>();
  const date = await pool.applyWith('when', [5], { timeout: 100 });
  expectType<Equal<typeof date, Date>>();
  const yes = await pool.apply('noArgs');
  expectType<Equal<typeof yes, boolean>>();

  // What the wire does to results: a Map arrives as a plain object, methods as undefined; Set, Date and typed arrays survive.
  const [c] = await pool.map('counts', [['ab']]);
  expectType<Equal<typeof c, Record<string, number>>>();
  const [p] = await pool.map('point', [1]);
  expectType<Equal<typeof p, { x: number; label: string | undefined; norm: undefined }>>();
  const [b] = await pool.map('bytes', [2]);
  expectType<Equal<typeof b, Float64Array>>();
  const [t] = await pool.map('tags', [undefined]);
  expectType<Equal<typeof t, Set<string>>>();
  expectType<Equal<Wire<Map<number, Date>>, Record<`${number}`, Date>>>();

  // @ts-expect-error: not an export
  await pool.map('sqaure', [1]);
  // @ts-expect-error: an export that is not a function
  await pool.map('notATask', [1]);
  // @ts-expect-error: wrong argument type
  await pool.map('square', ['one']);
  // @ts-expect-error: wrong arguments for starmap
  await pool.starmap('greet', [['a', 'b']]);
  // @ts-expect-error: too few arguments for apply
  await pool.apply('greet', 'a');
  // @ts-expect-error: wrong result type
  const wrong: string[] = await pool.map('square', [1]);
  void wrong;
  await pool.close();
}

export async function untyped(): Promise<void> {
  // Without the type parameter, today's use compiles: any name, any items, results unknown or as given.
  await using pool = await Pool.open({ module: './tasks.mjs' });
  const a = await pool.map('anything', [1, 'x', {}]);
  expectType<Equal<typeof a, unknown[]>>();
  const b = await pool.map<number>('square', [1, 2]);
  expectType<Equal<typeof b, number[]>>();
  const c = await pool.apply<string>('greet', 'a', 2, 3);
  expectType<Equal<typeof c, string>>();
  for await (const x of pool.imap<number>('square', (async function* () { yield 1; })())) expectType<Equal<typeof x, number>>();
  const d = await pool.starmap('add', [[1, 2]]);
  expectType<Equal<typeof d, unknown[]>>();
  for await (const r of pool.imapRecords('anything', [1])) void r.ok;
}
