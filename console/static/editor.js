// The YAML editor: line numbers, errors by line as you type (server-side validator), and the live diff.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("editor-form"), src = document.getElementById("source");
  const gutter = document.getElementById("gutter"), list = document.getElementById("errors");
  const status = document.getElementById("status"), diffBox = document.getElementById("diff");
  let bad = new Map(), timer = null, seq = 0;
  const fit = () => { src.style.height = "auto"; src.style.height = src.scrollHeight + "px"; };
  function drawGutter() {
    const n = src.value.split("\n").length;
    gutter.replaceChildren(...Array.from({length: n}, (_, i) => {
      const d = document.createElement("div"); d.textContent = i + 1;
      if (bad.has(i + 1)) { d.className = "err"; d.title = bad.get(i + 1); }
      return d;
    }));
  }
  const box = src.closest(".editor"), lineHeight = () => parseFloat(getComputedStyle(src).lineHeight) || 19.5;
  function jump(line) {
    const lines = src.value.split("\n"); let pos = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    src.focus({preventScroll: true}); src.setSelectionRange(pos, pos + (lines[line - 1] || "").length);
    box.scrollTop = Math.max(0, (line - 4) * lineHeight());
  }
  // Each error also sits on its own line, at the right edge of the editor.
  function drawInline() {
    box.querySelectorAll(".inline-err").forEach(e => e.remove());
    for (const [line, msg] of bad) {
      const d = document.createElement("div"); d.className = "inline-err"; d.setAttribute("role", "note");
      d.textContent = "⚠ " + msg.split("\n")[0]; d.style.top = (8 + (line - 1) * lineHeight()) + "px";
      box.append(d);
    }
  }
  function show(errors, diff) {
    bad = new Map();
    list.replaceChildren(...errors.map(e => {
      const li = document.createElement("li");
      const text = (e.line ? `Line ${e.line}: ` : "") + (e.where ? `${e.where}: ` : "") + e.message;
      if (e.line) {
        bad.set(e.line, (bad.has(e.line) ? bad.get(e.line) + "\n" : "") + e.message);
        const b = document.createElement("button"); b.type = "button"; b.textContent = text;
        b.onclick = () => jump(e.line); li.dataset.line = e.line; li.append(b);
      } else li.textContent = text;
      return li;
    }));
    status.textContent = errors.length ? `${errors.length} error(s)` : "No errors.";
    status.className = "small " + (errors.length ? "bad" : "ok");
    diffBox.replaceChildren(...(diff || "No changes.").split(/(?<=\n)/).map(l => {
      const s = document.createElement("span"); s.textContent = l;
      s.className = l.startsWith("@@") ? "hunk" : l.startsWith("+") && !l.startsWith("+++") ? "add"
        : l.startsWith("-") && !l.startsWith("---") ? "del" : "";
      return s;
    }));
    drawGutter(); drawInline();
  }
  async function check() {
    const mine = ++seq;
    const r = await consoleFetch(form.dataset.check, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({source: src.value})});
    if (r.ok && mine === seq) { const j = await r.json(); show(j.errors, j.diff); }
  }
  src.addEventListener("input", () => { fit(); drawGutter(); clearTimeout(timer); timer = setTimeout(check, 300); });
  src.addEventListener("keydown", e => {  // Tab indents two spaces; Escape then Tab leaves the editor
    if (e.key === "Tab" && !e.shiftKey && !src.dataset.esc) { e.preventDefault(); src.setRangeText("  ", src.selectionStart, src.selectionEnd, "end"); src.dispatchEvent(new Event("input")); }
    src.dataset.esc = e.key === "Escape" ? "1" : "";
  });
  list.querySelectorAll("li[data-line]").forEach(li => { const l = +li.dataset.line; if (l) bad.set(l, li.textContent); });
  const imp = document.getElementById("import");
  if (imp) imp.addEventListener("change", async () => { if (imp.files[0]) { src.value = await imp.files[0].text(); src.dispatchEvent(new Event("input")); } });
  fit(); drawGutter(); drawInline();
  if (list.children.length === 0) check();
});
