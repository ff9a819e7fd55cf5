// Types of a typed pool: `Pool.open<typeof import('./tasks.js')>()` checks task names, arguments and results.

declare const untyped: unique symbol;

/** The module type of a pool opened without one: any export name, unknown arguments, results as the caller says. */
export interface UntypedModule {
  readonly [untyped]: true;
}

type AnyFunction = (...args: never[]) => unknown;
type IsUntyped<M> = M extends UntypedModule ? true : false;

/** Names of the function exports of a task module type (any string for an untyped pool). */
export type TaskName<M> = IsUntyped<M> extends true ? string : { [K in keyof M]-?: M[K] extends AnyFunction ? K : never }[keyof M] & string;

type TaskFn<M, K> = K extends keyof M ? (M[K] extends AnyFunction ? M[K] : never) : never;

/** The arguments of export K (unknown[] for an untyped pool). */
export type TaskArgs<M, K> = IsUntyped<M> extends true ? unknown[] : TaskFn<M, K> extends (...args: infer A) => unknown ? A : never;

/** An item of map/imap/imapUnordered for export K: its first argument. */
export type TaskItem<M, K> = IsUntyped<M> extends true ? unknown : TaskArgs<M, K> extends readonly [] ? undefined : TaskArgs<M, K>[0];

/** What a call of export K gives back, as it arrives over the wire (`T` for an untyped pool). */
export type TaskResult<M, K, T = unknown> = IsUntyped<M> extends true ? T : Wire<Awaited<ReturnType<TaskFn<M, K>>>>;

/** An input: any iterable, sync or async (read lazily by imap and imapUnordered). */
export type Items<X> = Iterable<X> | AsyncIterable<X>;

type Kept = string | number | boolean | bigint | null | undefined | Date | RegExp | ArrayBuffer | SharedArrayBuffer | DataView | ArrayBufferView;

/**
 * A value after a trip through slurmpool's msgpack codec (src/protocol/codec.ts): primitives,
 * Date, RegExp, Set, ArrayBuffer, typed arrays and Buffer come back as they went; a Map comes back as
 * a plain object with string keys; an Error as a plain Error (name, message); a class instance as a
 * plain object of its own properties; a function as undefined. Keys whose value is undefined are kept.
 */
export type Wire<T> = T extends Kept
  ? T
  : T extends (...args: never[]) => unknown
    ? undefined
    : T extends Error
      ? Error
      : T extends ReadonlyMap<infer K, infer V>
        ? Record<K extends string | number ? `${K}` : string, Wire<V>>
        : T extends ReadonlySet<infer V>
          ? Set<Wire<V>>
          : T extends readonly unknown[]
            ? { -readonly [I in keyof T]: Wire<T[I]> }
            : T extends object
              ? { -readonly [P in keyof T]: Wire<T[P]> }
              : T;
