// A small hand-written SVG line chart (no plotting library): panels side by side, each one
// series of points against a linear axis, with an optional dashed limit line.

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  points: { x: number; y: number }[];
  /** A horizontal dashed line, e.g. the bar the value must stay under. */
  limit?: { y: number; label: string };
}

const PANEL_WIDTH = 420;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 60, right: 20, top: 40, bottom: 50 };

/** Round-number ticks from 0 to at least `max`: 0, step, 2*step, ... with step 1, 2 or 5 x 10^n. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let t = 0; t < max + step; t += step) ticks.push(Math.round(t * 1e6) / 1e6);
  return ticks;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panelSvg(panel: Panel, offsetX: number): string {
  const w = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const h = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const xTicks = niceTicks(Math.max(...panel.points.map((p) => p.x)));
  const yTicks = niceTicks(Math.max(...panel.points.map((p) => p.y), panel.limit?.y ?? 0));
  const xMax = xTicks[xTicks.length - 1]!;
  const yMax = yTicks[yTicks.length - 1]!;
  const px = (x: number) => MARGIN.left + (x / xMax) * w;
  const py = (y: number) => MARGIN.top + h - (y / yMax) * h;
  const parts: string[] = [`<g transform="translate(${offsetX},0)">`];
  parts.push(`<text x="${PANEL_WIDTH / 2}" y="22" text-anchor="middle" font-weight="bold">${escape(panel.title)}</text>`);
  for (const t of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  }
  for (const t of xTicks) parts.push(`<text x="${px(t)}" y="${MARGIN.top + h + 18}" text-anchor="middle">${t}</text>`);
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${MARGIN.top + h}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<text x="${MARGIN.left + w / 2}" y="${PANEL_HEIGHT - 10}" text-anchor="middle">${escape(panel.xLabel)}</text>`);
  parts.push(`<text transform="translate(16,${MARGIN.top + h / 2}) rotate(-90)" text-anchor="middle">${escape(panel.yLabel)}</text>`);
  if (panel.limit) {
    const y = py(panel.limit.y);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y}" y2="${y}" stroke="#c33" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${MARGIN.left + w - 4}" y="${y - 5}" text-anchor="end" fill="#c33">${escape(panel.limit.label)}</text>`);
  }
  const path = panel.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
  parts.push(`<path d="${path}" fill="none" stroke="#2565ae" stroke-width="2"/>`);
  for (const p of panel.points) parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="#2565ae"/>`);
  parts.push('</g>');
  return parts.join('\n');
}

/** The panels side by side, as a complete SVG document. */
export function panelsSvg(panels: Panel[]): string {
  const width = PANEL_WIDTH * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_HEIGHT}" viewBox="0 0 ${width} ${PANEL_HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${PANEL_HEIGHT}" fill="white"/>`,
    ...panels.map((panel, i) => panelSvg(panel, i * PANEL_WIDTH)),
    '</svg>',
    '',
  ].join('\n');
}
