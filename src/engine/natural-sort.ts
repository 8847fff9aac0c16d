// conman orders console names with a trailing integer compared numerically:
// n1 < n2 < n10.

const TRAIL = /^(.*?)(\d+)$/;

export function naturalCompare(a: string, b: string): number {
  const ma = TRAIL.exec(a);
  const mb = TRAIL.exec(b);
  if (ma && mb && ma[1] === mb[1]) {
    const d = Number(ma[2]) - Number(mb[2]);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
