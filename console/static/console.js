// leadbot console: a little plain JS (no build step). Every fetch sends the CSRF token.
"use strict";
const CSRF = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
async function consoleFetch(url, opts = {}) {
  opts.headers = Object.assign({"X-CSRF-Token": CSRF(), "X-Requested-With": "fetch"}, opts.headers || {});
  opts.credentials = "same-origin";
  return fetch(url, opts);
}
function fmtAge(sec) {
  sec = Math.max(0, Math.floor(sec));
  if (sec < 60) return sec + "s";
  if (sec < 3600) return Math.floor(sec / 60) + "m " + String(sec % 60).padStart(2, "0") + "s";
  if (sec < 86400) return Math.floor(sec / 3600) + "h " + String(Math.floor(sec % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(sec / 86400) + "d";
}
// Ticking ages: every [data-since] shows the time since its ISO timestamp; past data-sla-at the row turns late.
function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-since]").forEach(el => {
    el.textContent = fmtAge((now - Date.parse(el.dataset.since)) / 1000);
    const row = el.closest("tr");
    if (row && row.dataset.slaAt && now > Date.parse(row.dataset.slaAt)) row.classList.add("late");
  });
}
// Polling: an element with data-poll="url" has its inner HTML replaced every data-every ms.
function poll(el) {
  const every = parseInt(el.dataset.every || "2000", 10);
  setInterval(async () => {
    const url = new URL(el.dataset.poll, location.href);
    const r = await consoleFetch(url);
    if (r.ok) { el.innerHTML = await r.text(); tick(); }
  }, every);
}
document.addEventListener("DOMContentLoaded", () => {
  tick(); setInterval(tick, 1000);
  document.querySelectorAll("[data-poll]").forEach(poll);
  document.querySelectorAll("form[data-autosubmit] select").forEach(s => s.addEventListener("change", () => s.form.submit()));
});
