// Try-it phones: each shows the newest call to its number from the built-in simulator, speaks what the
// bot says, and answers, presses keys, says text or hangs up through the simulator's page actions, which
// the console relays (with the session's CSRF token) so the page works from any address, not just this machine.
"use strict";
const spoken = new Map();
function speak(text) {
  if (!document.getElementById("speak")?.checked || !("speechSynthesis" in window)) return;
  try { speechSynthesis.speak(new SpeechSynthesisUtterance(text)); } catch (e) { /* no voices: text only */ }
}
async function act(sid, action, body) {
  const r = await consoleFetch(`/console/try/calls/${sid}/${action}`, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body || {})});
  if (!r.ok) { const j = await r.json().catch(() => ({})); alert(j.error || r.status); }
  refresh();
}
function bubble(text, who) {
  const d = document.createElement("div"); d.className = "bubble " + who; d.textContent = text; return d;
}
function drawPhone(el, calls) {
  const num = el.querySelector(".number").value.trim();
  const mine = calls.filter(c => c.to === num);
  const call = mine.find(c => !["completed", "canceled", "failed", "busy", "no-answer"].includes(c.status)) || mine[0];
  el.dataset.sid = call ? call.sid : "";
  const live = call && call.status === "in-progress", ringing = call && ["queued", "ringing"].includes(call.status);
  el.querySelector(".state").textContent = !call ? "No call." : ringing ? `Incoming call from ${call.from}` : `Call ${call.status}`;
  el.querySelector(".answer").hidden = !ringing;
  el.querySelector(".hangup").hidden = !live;
  el.querySelectorAll(".keypad button, .say button, .say input, .silence").forEach(b => b.disabled = !live);
  const screen = el.querySelector(".screen");
  const heard = call ? call.heard || [] : [];
  screen.replaceChildren(...heard.map(h => h.startsWith("You: ") ? bubble(h.slice(5), "you") : bubble(h, "bot")));
  screen.scrollTop = screen.scrollHeight;
  if (call) {
    const done = spoken.get(call.sid) || 0;
    heard.slice(done).filter(h => !h.startsWith("You: ")).forEach(speak);
    spoken.set(call.sid, heard.length);
  }
}
async function refresh() {
  const r = await consoleFetch("/console/try/state");
  if (!r.ok) return;
  const s = await r.json();
  document.querySelectorAll(".phone").forEach(el => drawPhone(el, s.calls));
  const num = document.getElementById("num-prospect").value.trim();
  const thread = document.getElementById("sms-thread");
  const msgs = s.messages.filter(m => m.to === num || m.from === num).reverse();
  thread.replaceChildren(...msgs.map(m => bubble(m.body, m.direction.startsWith("inbound") ? "you" : "bot")));
  if (!msgs.length) thread.replaceChildren(Object.assign(document.createElement("p"), {className: "muted", textContent: "No texts yet."}));
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".phone").forEach(el => {
    const sid = () => el.dataset.sid;
    el.querySelector(".answer").onclick = () => act(sid(), "answer");
    el.querySelector(".hangup").onclick = () => act(sid(), "hangup");
    el.querySelector(".silence").onclick = () => act(sid(), "input", {});
    el.querySelectorAll(".keypad button").forEach(b => b.onclick = () => act(sid(), "input", {digits: b.dataset.key}));
    el.querySelector(".say").onsubmit = e => { e.preventDefault(); const i = e.target.querySelector("input");
      act(sid(), "input", {speech: i.value}); i.value = ""; };
    el.querySelector(".number").addEventListener("change", refresh);
  });
  document.getElementById("sms-form").onsubmit = async e => { e.preventDefault();
    const i = document.getElementById("sms-body");
    await consoleFetch("/console/try/sms", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({from: document.getElementById("num-prospect").value.trim(), body: i.value})});
    i.value = ""; refresh(); };
  refresh(); setInterval(refresh, 1000);
});
