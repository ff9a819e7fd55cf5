// Which waiting tasks a node starts now, when tasks ask for different numbers of CPUs and GPUs.
//
// The policy (docs/gpus.md): first come, first served, with the head of the queue holding a
// reservation. Waiting tasks are taken in the order they arrived. The first one (the head) starts as
// soon as the node has its CPUs and GPUs free. While it cannot start, a task behind it may start
// (backfill) only out of the surplus: for each resource, what is free beyond what the head needs
// (nothing, for a resource the head is short of). Proof that backfill never delays the head: the
// head waits only for resources held by tasks that were running before it; a backfilled task takes
// only units that would still be free when the head's need is met, because free counts only grow
// until the head starts, except by backfills that each leave at least the head's need free.
// So a large task is never starved by a stream of small ones, and small ones still fill the holes
// that large ones leave.

/** What a task holds while it runs. */
export interface Need {
  cpus: number;
  gpus: number;
}

/** A task to start now: its position among the waiting ones, and the GPU positions it gets. */
export interface Start {
  index: number;
  gpus: number[];
}

/** The CPUs and GPUs of one node, and who holds them. */
export class Ledger {
  freeCpus: number;
  /** GPU positions (in the node's GPU list) not held by a running task, lowest first. */
  private readonly freeGpus: number[];

  constructor(
    readonly cpus: number,
    readonly gpus: number,
  ) {
    this.freeCpus = cpus;
    this.freeGpus = Array.from({ length: gpus }, (_, i) => i);
  }

  get freeGpuCount(): number {
    return this.freeGpus.length;
  }

  /** Why a need can never run here (more than the node has), or null. */
  tooLarge(n: Need): string | null {
    if (n.cpus > this.cpus) return `${n.cpus} CPUs, more than the ${this.cpus} of this node`;
    if (n.gpus > this.gpus) return `${n.gpus} GPU${n.gpus === 1 ? '' : 's'}, more than the ${this.gpus} of this node`;
    return null;
  }

  private take(n: Need): number[] {
    this.freeCpus -= n.cpus;
    return this.freeGpus.splice(0, n.gpus);
  }

  /** A running task ended: its CPUs and GPUs are free again. */
  release(cpus: number, gpus: readonly number[]): void {
    this.freeCpus = Math.min(this.cpus, this.freeCpus + cpus);
    for (const g of gpus) if (!this.freeGpus.includes(g)) this.freeGpus.push(g);
    this.freeGpus.sort((a, b) => a - b);
  }

  /**
   * Start what the policy allows among `waiting` (in arrival order), at most `workers` tasks (idle
   * worker threads); takes their resources. Needs larger than the node are skipped (the caller fails them).
   */
  pick(waiting: readonly Need[], workers: number): Start[] {
    const out: Start[] = [];
    let head: Need | null = null;
    for (let i = 0; i < waiting.length && out.length < workers; i++) {
      const n = waiting[i]!;
      if (this.tooLarge(n)) continue;
      if (head === null) {
        if (n.cpus <= this.freeCpus && n.gpus <= this.freeGpus.length) {
          out.push({ index: i, gpus: this.take(n) });
          continue;
        }
        head = n;
        continue;
      }
      // Backfill from the surplus beyond the head's reservation only.
      const cpus = Math.max(0, this.freeCpus - head.cpus);
      const gpus = Math.max(0, this.freeGpus.length - head.gpus);
      if (n.cpus <= cpus && n.gpus <= gpus) out.push({ index: i, gpus: this.take(n) });
    }
    return out;
  }
}
