// A small line chart on <canvas>: axes, grid, lines and a legend, nothing else. Written by
// hand so the page needs no library, no CDN and no build step.

const FONT = '11px system-ui, sans-serif';
const PAD = { left: 46, right: 10, top: 18, bottom: 22 };

// A "nice" step (1, 2 or 5 × a power of ten) that cuts `max` into about `parts` pieces.
export function niceStep(max, parts = 4) {
  if (!(max > 0)) return 1;
  const raw = max / parts;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10;
  return nice * power;
}

export function formatNumber(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000) return `${Math.round(v / 1000)}k`;
  if (a >= 100) return `${Math.round(v)}`;
  if (a >= 10) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2);
}

export class LineChart {
  // options: { x: 'time' (series x are ms timestamps, shown as seconds before now over
  // `spanMs`) or 'category' (x are indexes into `labels`), yMax: fixed top (else from data),
  // yFormat: label of a y value }
  constructor(canvas, options) {
    this.canvas = canvas;
    this.options = { x: 'time', spanMs: 120000, yFormat: formatNumber, ...options };
  }

  // series: [{ name, color, points: [[x, y], ...], dashed }]; y may be null (a gap).
  draw(series, nowMs = Date.now()) {
    const { canvas, options } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;

    const plot = { x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
    let xMin, xMax;
    if (options.x === 'time') {
      xMin = nowMs - options.spanMs;
      xMax = nowMs;
    } else {
      xMin = 0;
      xMax = Math.max(1, options.labels.length - 1);
    }
    let dataMax = 0;
    for (const s of series) {
      for (const [x, y] of s.points) {
        if (y != null && x >= xMin && Number.isFinite(y)) dataMax = Math.max(dataMax, y);
      }
    }
    const step = options.yMax != null ? options.yMax / 4 : niceStep(dataMax || 1);
    const yMax = options.yMax != null ? options.yMax : Math.max(step, Math.ceil(dataMax / step) * step);
    const px = (x) => plot.x + ((x - xMin) / (xMax - xMin)) * plot.w;
    const py = (y) => plot.y + plot.h - (Math.min(y, yMax) / yMax) * plot.h;

    // Grid and y labels.
    ctx.strokeStyle = '#e3e6ea';
    ctx.fillStyle = '#5f6368';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let y = 0; y <= yMax + step / 1000; y += step) {
      const yy = Math.round(py(y)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(plot.x, yy);
      ctx.lineTo(plot.x + plot.w, yy);
      ctx.stroke();
      ctx.fillText(options.yFormat(y), plot.x - 6, yy);
    }
    // x labels.
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    if (options.x === 'time') {
      const seconds = options.spanMs / 1000;
      const every = seconds > 60 ? 30 : 10;
      for (let s = 0; s <= seconds; s += every) {
        const x = px(nowMs - s * 1000);
        ctx.fillText(s === 0 ? 'now' : `-${s}s`, x, plot.y + plot.h + 5);
      }
    } else {
      options.labels.forEach((label, i) => ctx.fillText(label, px(i), plot.y + plot.h + 5));
    }

    // Lines.
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = s.width || 1.8;
      ctx.setLineDash(s.dashed ? [5, 4] : []);
      ctx.beginPath();
      let open = false;
      for (const [x, y] of s.points) {
        if (y == null || !Number.isFinite(y) || x < xMin) {
          open = false;
          continue;
        }
        if (open) ctx.lineTo(px(x), py(y));
        else ctx.moveTo(px(x), py(y));
        open = true;
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);

    // Legend, top right, one entry per named series.
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    let lx = plot.x + plot.w;
    for (const s of [...series].reverse()) {
      if (!s.name) continue;
      const w = ctx.measureText(s.name).width;
      lx -= w + 22;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [4, 3] : []);
      ctx.beginPath();
      ctx.moveTo(lx, PAD.top / 2);
      ctx.lineTo(lx + 12, PAD.top / 2);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = '#3c4043';
      ctx.fillText(s.name, lx + 15, PAD.top / 2);
    }
  }
}
