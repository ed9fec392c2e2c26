// An SVG chart of bench results: mean ms against group size, both axes
// logarithmic, one panel per operation and tree shape, one line per
// implementation, a legend on top. No dependencies; bench/run.js writes it
// next to the JSON as FILE.svg.

const COLORS = { 'paired-mls': '#1f6fd1', 'ts-mls': '#d1411f', 'openmls-native': '#2a9d3c' };
const SPARE = ['#8e44ad', '#e0a100', '#17a2b8', '#7f7f7f'];
const PANEL_W = 250;
const PANEL_H = 190;
const PAD = { left: 52, right: 12, top: 24, bottom: 34 };
const COLUMNS = 4;
const LEGEND_H = 34;
const TITLE_H = 26;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x) => Number(x.toFixed(2));

function fmtMs(ms) {
  if (ms >= 1000) return `${ms / 1000}s`;
  if (ms >= 1) return `${ms}ms`;
  return `${Number((ms * 1000).toPrecision(3))}µs`;
}

/** Log-scale axis over [lo, hi] (positive), padded to whole decades for y. */
function logScale(lo, hi, from, to) {
  const [a, b] = [Math.log10(lo), Math.log10(hi)];
  const span = b - a || 1;
  return (v) => from + ((Math.log10(v) - a) / span) * (to - from);
}

/**
 * Render `results` ([{ impl, op, n, mean_ms, shape? }]) as an SVG string.
 * Options: `title`, `ops` (panel order), `impls` (legend order).
 */
export function renderChart(results, { title = 'paired-mls bench: mean time per operation', ops, impls } = {}) {
  const rows = results.filter((r) => r.mean_ms > 0);
  const implList = impls ?? [...new Set(rows.map((r) => r.impl))];
  for (const r of rows) if (!implList.includes(r.impl)) implList.push(r.impl);
  const color = (impl) => COLORS[impl] ?? SPARE[implList.indexOf(impl) % SPARE.length];
  const opList = ops ?? [...new Set(rows.map((r) => r.op))];
  const shapes = [...new Set(rows.map((r) => r.shape ?? 'blank'))].sort();
  const panels = [];
  for (const shape of shapes) {
    for (const op of opList) {
      const data = rows.filter((r) => r.op === op && (r.shape ?? 'blank') === shape);
      if (data.length) panels.push({ shape, op, data });
    }
  }
  const perShape = Math.max(...shapes.map((shape) => panels.filter((p) => p.shape === shape).length), 1);
  const columns = Math.min(COLUMNS, perShape);
  // Each shape starts a new row of panels.
  let gridRows = 0;
  for (const shape of shapes) {
    panels.filter((p) => p.shape === shape).forEach((p, k) => {
      p.col = k % columns;
      p.row = gridRows + Math.floor(k / columns);
    });
    gridRows += Math.ceil(panels.filter((p) => p.shape === shape).length / columns);
  }
  const width = columns * PANEL_W;
  const height = TITLE_H + LEGEND_H + gridRows * PANEL_H + 8;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  // Legend
  let lx = 12;
  const ly = TITLE_H + 14;
  out.push(`<g class="legend">`);
  for (const impl of implList) {
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color(impl)}" stroke-width="2.5"/><circle cx="${lx + 11}" cy="${ly}" r="3" fill="${color(impl)}"/>`);
    out.push(`<text x="${lx + 28}" y="${ly + 4}" font-size="12">${esc(impl)}</text>`);
    lx += 40 + impl.length * 7.5;
  }
  out.push(`<text x="${width - 12}" y="${ly + 4}" text-anchor="end" fill="#555">x: group size n (log) · y: mean time (log)</text>`);
  out.push(`</g>`);

  panels.forEach(({ shape, op, data, col, row }) => {
    const ox = col * PANEL_W;
    const oy = TITLE_H + LEGEND_H + row * PANEL_H;
    const [x0, x1] = [ox + PAD.left, ox + PANEL_W - PAD.right];
    const [y0, y1] = [oy + PANEL_H - PAD.bottom, oy + PAD.top];
    const sizes = [...new Set(data.map((r) => r.n))].sort((a, b) => a - b);
    const nLo = sizes.length > 1 ? sizes[0] : sizes[0] / 2;
    const nHi = sizes.length > 1 ? sizes[sizes.length - 1] : sizes[0] * 2;
    const ms = data.map((r) => r.mean_ms);
    const decLo = Math.floor(Math.log10(Math.min(...ms)));
    let decHi = Math.ceil(Math.log10(Math.max(...ms)));
    if (decHi === decLo) decHi++;
    const sx = logScale(nLo, nHi, x0 + 6, x1 - 6);
    const sy = logScale(10 ** decLo, 10 ** decHi, y0, y1);
    out.push(`<g class="panel" data-op="${esc(op)}" data-shape="${esc(shape)}">`);
    out.push(`<text x="${(x0 + x1) / 2}" y="${oy + 15}" text-anchor="middle" font-size="11" font-weight="bold">${esc(op)}${shapes.length > 1 || shape !== 'blank' ? ` (${esc(shape)})` : ''}</text>`);
    out.push(`<rect x="${x0}" y="${y1}" width="${num(x1 - x0)}" height="${num(y0 - y1)}" fill="none" stroke="#999"/>`);
    for (let d = decLo; d <= decHi; d++) {
      const y = num(sy(10 ** d));
      out.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e4e4e4"/><text x="${x0 - 4}" y="${y + 3}" text-anchor="end">${esc(fmtMs(10 ** d))}</text>`);
    }
    for (const n of sizes) {
      const x = num(sx(n));
      out.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#f0f0f0"/><text x="${x}" y="${y0 + 13}" text-anchor="middle">${n}</text>`);
    }
    out.push(`<text x="${(x0 + x1) / 2}" y="${y0 + 26}" text-anchor="middle" fill="#555">n</text>`);
    for (const impl of implList) {
      const pts = data.filter((r) => r.impl === impl).sort((a, b) => a.n - b.n);
      if (!pts.length) continue;
      const xy = pts.map((r) => [num(sx(r.n)), num(sy(r.mean_ms))]);
      if (xy.length > 1) out.push(`<polyline fill="none" stroke="${color(impl)}" stroke-width="2" points="${xy.map((p) => p.join(',')).join(' ')}"/>`);
      pts.forEach((r, k) => out.push(`<circle cx="${xy[k][0]}" cy="${xy[k][1]}" r="2.5" fill="${color(impl)}"><title>${esc(`${impl} ${op} n=${r.n}: ${r.mean_ms} ms`)}</title></circle>`));
    }
    out.push(`</g>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
