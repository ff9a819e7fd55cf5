// Integer lists written as ranges: [0,1,2,3,8] → "0-3,8".

/** Sorted ranges of the numbers (duplicates kept as written once per run); at most `max` entries, then "… (N more)". */
export function formatRanges(xs: readonly number[], max = Infinity): string {
  const s = [...xs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
    if (parts.length >= max && i < s.length) {
      parts.push(`… (${s.length - i} more)`);
      break;
    }
  }
  return parts.join(',');
}
