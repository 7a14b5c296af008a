// Reports: draws the page's charts with the vendored Chart.js from the JSON the page embeds
// (#report-data). The tables beside each chart hold the same numbers, for screen readers and without JS.
"use strict";
const COLORS = ["#123c69", "#0b7a75", "#b45309", "#7c3aed", "#be123c", "#475569", "#15803d"];
const MARK = "#b42318";
const SHOWN_GROUPS = 10;  // the busiest sources or services; the table lists every one

function secs(v) {
  return v == null ? "—" : v < 60 ? v.toFixed(1) + "s" : (v / 60).toFixed(1) + "m";
}

// The count above each bar (or past its end, on a horizontal chart), so the picture reads without hovering.
const barLabels = {
  id: "barLabels",
  afterDatasetsDraw(chart, _args, opts) {
    if (!opts.show) return;
    const {ctx} = chart, horizontal = chart.options.indexAxis === "y";
    ctx.save();
    ctx.fillStyle = "#172033";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = horizontal ? "left" : "center";
    ctx.textBaseline = horizontal ? "middle" : "bottom";
    chart.getDatasetMeta(0).data.forEach((bar, i) => {
      const n = chart.data.datasets[0].data[i];
      if (!n) return;
      ctx.fillText(opts.text ? opts.text(n, i) : String(n), bar.x + (horizontal ? 6 : 0), bar.y - (horizontal ? 0 : 3));
    });
    ctx.restore();
  },
};

// p50 and p90 as dashed lines, placed inside their bucket by `at` (buckets as units: 2.5 is mid third bucket).
const percentiles = {
  id: "percentiles",
  afterDatasetsDraw(chart, _args, opts) {
    const marks = opts.marks || [];
    if (!marks.length) return;
    const {ctx, chartArea: area, scales: {x}} = chart;
    const width = x.getPixelForValue(1) - x.getPixelForValue(0);
    const left = x.getPixelForValue(0) - width / 2;
    ctx.save();
    ctx.strokeStyle = ctx.fillStyle = MARK;
    ctx.lineWidth = 2;
    ctx.font = "12px system-ui, sans-serif";
    marks.forEach((m, i) => {
      const px = left + m.at * width;
      ctx.setLineDash(i === 0 ? [5, 3] : [1, 3]);
      ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke();
      // Labels stack in the top-right corner, each with a sample of its line, clear of the bars.
      const y = area.top + 8 + i * 16;
      ctx.beginPath(); ctx.moveTo(area.right - 118, y); ctx.lineTo(area.right - 98, y); ctx.stroke();
      ctx.textAlign = "left"; ctx.textBaseline = "middle";
      ctx.fillText(`${m.name} ${secs(m.seconds)}`, area.right - 92, y);
    });
    ctx.restore();
  },
};

function base(extra) {
  return Object.assign({responsive: true, maintainAspectRatio: false, animation: false}, extra);
}

function speedChart(canvas, row, color) {
  const layout = {padding: {top: row.marks.length ? 36 : 16}};
  return new Chart(canvas, {
    type: "bar",
    data: {labels: row.bins.map(b => b[0]), datasets: [{label: "Leads", data: row.bins.map(b => b[1]), backgroundColor: color}]},
    options: base({
      layout,
      scales: {x: {title: {display: true, text: "time from the form"}, grid: {display: false}},
               y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "leads"}}},
      plugins: {legend: {display: false}, barLabels: {show: true}, percentiles: {marks: row.marks}},
    }),
    plugins: [barLabels, percentiles],
  });
}

function funnelChart(canvas, funnel) {
  const submitted = funnel[0][1];
  const share = n => (submitted ? Math.round(100 * n / submitted) + "%" : "—");
  return new Chart(canvas, {
    type: "bar",
    data: {labels: funnel.map(f => f[0]),
           datasets: [{label: "Leads", data: funnel.map(f => f[1]), backgroundColor: funnel.map((_, i) => COLORS[i % COLORS.length])}]},
    options: base({
      indexAxis: "y",
      layout: {padding: {right: 70}},
      scales: {x: {beginAtZero: true, ticks: {precision: 0}}, y: {grid: {display: false}}},
      plugins: {legend: {display: false}, barLabels: {show: true, text: n => `${n} (${share(n)})`},
                tooltip: {callbacks: {label: c => `${c.raw} leads (${share(c.raw)} of submitted)`}}},
    }),
    plugins: [barLabels],
  });
}

function conversionChart(canvas, groups, stages) {
  const names = Object.keys(groups).sort((a, b) => (groups[b].submitted || 0) - (groups[a].submitted || 0) || a.localeCompare(b))
    .slice(0, SHOWN_GROUPS);
  const shown = stages.filter(s => s !== "submitted");
  const pct = (g, s) => (g.submitted ? Math.round(1000 * (g[s] || 0) / g.submitted) / 10 : 0);
  return new Chart(canvas, {
    type: "bar",
    data: {labels: names, datasets: shown.map((s, i) => ({label: s, data: names.map(n => pct(groups[n], s)),
                                                          backgroundColor: COLORS[(i + 1) % COLORS.length]}))},
    options: base({
      scales: {y: {beginAtZero: true, max: 100, ticks: {callback: v => v + "%"}, title: {display: true, text: "of submitted"}},
               x: {grid: {display: false}}},
      plugins: {legend: {position: "bottom"},
                tooltip: {callbacks: {label: c => {
                  const g = groups[names[c.dataIndex]];
                  return `${c.dataset.label}: ${c.raw}% (${g[c.dataset.label] || 0} of ${g.submitted || 0})`;
                }}}},
    }),
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("report-data");
  if (!source || typeof Chart === "undefined") return;  // the tables stand on their own
  const data = JSON.parse(source.textContent);
  Chart.defaults.color = "#5a6478";
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  document.querySelectorAll("canvas[data-chart]").forEach(canvas => {
    const kind = canvas.dataset.chart;
    if (kind === "speed") {
      const i = Number(canvas.dataset.index);
      speedChart(canvas, data.speed[i], COLORS[i % COLORS.length]);
    } else if (kind === "funnel") {
      funnelChart(canvas, data.funnel);
    } else if (kind === "conversion") {
      conversionChart(canvas, data.groups[canvas.dataset.kind], data.stages);
    }
  });
});
