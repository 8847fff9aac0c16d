// Patterns compiled to a Thompson NFA and run as a Pike VM: the set of live
// states advances one character at a time, each state at most once per
// character, so matching a name costs O(name length × program size) whatever
// the pattern — no backtracking, no exponential case. A run can stop after
// any character and resume, so the caller can slice long work across
// event-loop turns.

import { inSet, isWord, type CharSet } from './charset.js';
import type { AssertKind, Node } from './pattern-ast.js';

const SET = 0;
const SPLIT = 1;
const JMP = 2;
const ASSERT = 3;
const MATCH = 4;

const ASSERTS: AssertKind[] = ['bol', 'eol', 'wordb', 'nwordb', 'wordstart', 'wordend'];

export class Program {
  constructor(
    readonly op: Uint8Array,
    readonly x: Int32Array,
    readonly y: Int32Array,
    readonly sets: CharSet[],
  ) {}

  get size(): number {
    return this.op.length;
  }

  /** Whether the whole of `name` matches (runs to the end: for small inputs and tests). */
  test(name: string): boolean {
    const r = new Run(this);
    r.reset(name);
    while (!r.advance(Number.MAX_SAFE_INTEGER));
    return r.result;
  }
}

/** Compile a tree (already checked against MAX_PROGRAM/MAX_DEPTH by its builders). */
export function compile(root: Node): Program {
  const op: number[] = [];
  const x: number[] = [];
  const y: number[] = [];
  const sets: CharSet[] = [];
  const emit = (o: number, a = 0, b = 0): number => {
    op.push(o);
    x.push(a);
    y.push(b);
    return op.length - 1;
  };
  const gen = (n: Node): void => {
    switch (n.t) {
      case 'set':
        sets.push(n.set);
        emit(SET, sets.length - 1);
        return;
      case 'assert':
        emit(ASSERT, ASSERTS.indexOf(n.kind));
        return;
      case 'cat':
        for (const m of n.items) gen(m);
        return;
      case 'alt': {
        const jumps: number[] = [];
        n.alts.forEach((m, k) => {
          if (k === n.alts.length - 1) return gen(m);
          const split = emit(SPLIT, op.length + 1);
          gen(m);
          jumps.push(emit(JMP));
          y[split] = op.length;
        });
        for (const j of jumps) x[j] = op.length;
        return;
      }
      case 'rep': {
        for (let k = 0; k < n.min; k++) gen(n.node);
        if (n.max === null) {
          const loop = emit(SPLIT, op.length + 1);
          gen(n.node);
          emit(JMP, loop);
          y[loop] = op.length;
          return;
        }
        const splits: number[] = [];
        for (let k = n.min; k < n.max; k++) {
          splits.push(emit(SPLIT, op.length + 1));
          gen(n.node);
        }
        for (const s of splits) y[s] = op.length;
        return;
      }
    }
  };
  gen(root);
  emit(MATCH);
  return new Program(Uint8Array.from(op), Int32Array.from(x), Int32Array.from(y), sets);
}

/** One resumable whole-name match of a program. Reusable: reset() for the next name. */
export class Run {
  private cur: Int32Array;
  private next: Int32Array;
  private curN = 0;
  private readonly mark: Uint32Array;
  private gen = 0;
  private readonly stack: Int32Array;
  private s = '';
  private i = 0;
  /** states visited so far; callers budget on it */
  work = 0;
  done = false;
  result = false;

  constructor(private readonly p: Program) {
    const n = p.size;
    this.cur = new Int32Array(n);
    this.next = new Int32Array(n);
    this.mark = new Uint32Array(n);
    this.stack = new Int32Array(2 * n + 2);
  }

  reset(name: string): void {
    this.s = name;
    this.i = 0;
    this.done = false;
    this.result = false;
    this.bumpGen();
    this.curN = this.close(this.cur, 0, 0, 0);
  }

  /** Advance until done or about `maxWork` more work is spent; returns done. */
  advance(maxWork: number): boolean {
    const { op, x, sets } = this.p;
    const stop = this.work + maxWork;
    const len = this.s.length;
    while (!this.done) {
      if (this.curN === 0) {
        this.done = true;
        break;
      }
      if (this.i === len) {
        for (let k = 0; k < this.curN; k++) if (op[this.cur[k]] === MATCH) this.result = true;
        this.done = true;
        break;
      }
      const c = this.s.charCodeAt(this.i);
      this.bumpGen();
      let n = 0;
      for (let k = 0; k < this.curN; k++) {
        const pc = this.cur[k];
        if (op[pc] === SET && inSet(sets[x[pc]], c)) n = this.close(this.next, n, pc + 1, this.i + 1);
      }
      this.work += this.curN;
      [this.cur, this.next] = [this.next, this.cur];
      this.curN = n;
      this.i++;
      if (this.work >= stop) break;
    }
    return this.done;
  }

  private bumpGen(): void {
    if (++this.gen === 0xffffffff) {
      this.mark.fill(0);
      this.gen = 1;
    }
  }

  /** Add `pc` and every state reachable from it without a character, at position `at`. */
  private close(list: Int32Array, n: number, pc0: number, at: number): number {
    const { op, x, y } = this.p;
    const stack = this.stack;
    let sp = 0;
    stack[sp++] = pc0;
    while (sp > 0) {
      const pc = stack[--sp];
      if (this.mark[pc] === this.gen) continue;
      this.mark[pc] = this.gen;
      this.work++;
      switch (op[pc]) {
        case JMP:
          stack[sp++] = x[pc];
          break;
        case SPLIT:
          stack[sp++] = y[pc];
          stack[sp++] = x[pc];
          break;
        case ASSERT:
          if (this.holds(x[pc], at)) stack[sp++] = pc + 1;
          break;
        default:
          list[n++] = pc;
      }
    }
    return n;
  }

  private holds(kind: number, at: number): boolean {
    const s = this.s;
    const before = at > 0 && isWord(s.charCodeAt(at - 1));
    const after = at < s.length && isWord(s.charCodeAt(at));
    switch (ASSERTS[kind]) {
      case 'bol':
        return at === 0;
      case 'eol':
        return at === s.length;
      case 'wordb':
        return before !== after;
      case 'nwordb':
        return before === after;
      case 'wordstart':
        return !before && after;
      case 'wordend':
        return before && !after;
    }
    return false;
  }
}
