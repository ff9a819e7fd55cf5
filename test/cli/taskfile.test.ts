// The streamed task file reads exactly what the in-memory parser reads, in any order of access.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTaskFile } from '../../dist/cli/input.js';
import { openTaskFile } from '../../dist/cli/taskfile.js';
import { tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

async function same(text: string | Buffer, order: (n: number) => number[]): Promise<void> {
  const path = t.path(`f${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(path, text);
  const want = parseTaskFile(Buffer.isBuffer(text) ? text.toString('utf8') : text, `task file ${path}`);
  const got = await openTaskFile(path);
  try {
    expect(got.count).toBe(want.commands.length);
    expect(got.sha256).toBe(want.sha256);
    for (const i of order(got.count)) expect(got.at(i), `command ${i}`).toEqual({ command: want.commands[i], line: want.lines[i] });
  } finally {
    got.close();
  }
}

const forward = (n: number) => Array.from({ length: n }, (_, i) => i);
const backward = (n: number) => forward(n).reverse();
/** A fixed shuffle (no randomness: a failure can be reproduced). */
const shuffled = (n: number) => forward(n).map((i) => (i * 7919) % n);

describe('a streamed task file', () => {
  it('comments, blank lines, CRLF, a missing last newline, non-ASCII blanks and text', async () => {
    const text = '# header\r\necho a\r\n\r\n   \n\t# indented comment\n  echo b\n\u00a0\necho ünïcödé ✓\necho last';
    for (const order of [forward, backward, shuffled]) await same(text, order);
  });

  it('thousands of commands and a line longer than the read buffer, read in any order', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) {
      if (i % 13 === 0) lines.push('# comment');
      if (i % 17 === 0) lines.push('');
      lines.push(i === 2500 ? `echo ${'x'.repeat(200_000)}` : `echo ${i}`);
    }
    const text = `${lines.join('\n')}\n`;
    for (const order of [forward, backward, shuffled]) await same(text, order);
  });

  it('refuses a NUL byte naming its line, and empty or comment-only files, as the parser does', async () => {
    const nul = t.write('nul.txt', 'echo a\n# ok\necho b\0c\necho d\n');
    await expect(openTaskFile(nul)).rejects.toThrow(`task file ${nul} line 3 contains a NUL byte; a command line cannot`);
    const nulInComment = t.write('nulc.txt', 'echo a\n# \0\n');
    expect((await openTaskFile(nulInComment)).count).toBe(1);
    const empty = t.write('empty.txt', '');
    await expect(openTaskFile(empty)).rejects.toThrow(`task file ${empty} is empty: it has no commands to run`);
    const comments = t.write('comments.txt', '#\n\n');
    await expect(openTaskFile(comments)).rejects.toThrow(`task file ${comments} has no commands: its 2 lines are blank or # comments`);
  });

  it('names a command past the end', async () => {
    const f = await openTaskFile(t.write('two.txt', 'a\nb\n'));
    expect(() => f.at(2)).toThrow('has 2 commands; there is no command 2');
    f.close();
  });
});
