// Shell-like splitting of option strings (grow's sbatch options): its own module, so that checking
// options does not load the grower.

/** Split a string of options as a shell would (quotes and backslashes; no expansion). */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (q) {
      if (ch === q) q = null;
      else if (ch === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      q = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += ch;
  }
  if (q) throw new Error(`unbalanced ${q} in ${JSON.stringify(s)}`);
  if (has || cur) out.push(cur);
  return out;
}
