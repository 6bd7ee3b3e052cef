// The training chart: losses on top (D loss = real + fake, G loss), D's outputs below
// (D(x), D(G(z))) on [0, 1]. Plain canvas, redrawn from the whole history.

const SERIES = [
  { key: 'dloss', label: 'D loss', color: '#d1242f', panel: 0 },
  { key: 'gloss', label: 'G loss', color: '#0969da', panel: 0 },
  { key: 'dx', label: 'D(x)', color: '#1a7f37', panel: 1 },
  { key: 'dgz', label: 'D(G(z))', color: '#bf8700', panel: 1 },
];

export class Chart {
  constructor(canvas) {
    this.canvas = canvas;
    this.rows = []; // {step, dloss, gloss, dx, dgz}
    this.draw();
  }

  clear() {
    this.rows = [];
    this.draw();
  }

  // Appends rows of [step, D loss real, D(x), D loss fake, D(G(z)), G loss, D(G(z)) after].
  push(flat) {
    for (let i = 0; i + 7 <= flat.length; i += 7) {
      this.rows.push({ step: flat[i], dloss: flat[i + 1] + flat[i + 3], dx: flat[i + 2], dgz: flat[i + 4], gloss: flat[i + 5] });
    }
    this.draw();
  }

  last() {
    return this.rows[this.rows.length - 1];
  }

  draw() {
    const { canvas, rows } = this;
    const ctx = canvas.getContext('2d');
    const W = canvas.width;
    const H = canvas.height;
    const fg = getComputedStyle(document.body).color;
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    const left = 34;
    const panels = [
      { top: 4, height: H * 0.55 - 8, max: Math.max(1, ...rows.flatMap((r) => [r.dloss, r.gloss]).filter(Number.isFinite)) },
      { top: H * 0.55 + 4, height: H * 0.45 - 20, max: 1 },
    ];
    const x0 = rows[0]?.step ?? 0;
    const x1 = Math.max(x0 + 1, rows[rows.length - 1]?.step ?? 1);
    const x = (s) => left + ((s - x0) / (x1 - x0)) * (W - left - 4);
    for (const p of panels) {
      ctx.strokeStyle = 'rgba(128,128,128,0.5)';
      ctx.strokeRect(left, p.top, W - left - 4, p.height);
      ctx.fillStyle = fg;
      ctx.fillText(p.max.toFixed(p.max < 2 ? 1 : 0), 2, p.top + 10);
      ctx.fillText('0', 2, p.top + p.height);
    }
    for (const s of SERIES) {
      const p = panels[s.panel];
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      rows.forEach((r, i) => {
        const v = Math.min(r[s.key], p.max);
        const y = p.top + p.height * (1 - v / p.max);
        if (i === 0) ctx.moveTo(x(r.step), y);
        else ctx.lineTo(x(r.step), y);
      });
      ctx.stroke();
    }
    let lx = left + 6;
    for (const s of SERIES) {
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, H - 12, 10, 3);
      ctx.fillStyle = fg;
      ctx.fillText(s.label, lx + 13, H - 6);
      lx += ctx.measureText(s.label).width + 30;
    }
    ctx.fillText(`step ${x0}–${x1}`, W - 90, H - 6);
    if (rows.length === 0) {
      ctx.fillStyle = 'rgba(128,128,128,0.9)';
      ctx.fillText('losses and D outputs appear here while training', left + 12, panels[0].top + 20);
    }
  }
}
