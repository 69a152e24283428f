// The console's command bar (Add, Refresh, Stop, Delete, Download on the selected captures)
// and its notifications of what happened (started, stopped, failed, uploaded). Loaded after
// console.js, whose state and calls it uses.
"use strict";

// The command bar: what it does applies to the selected captures.
function selectedRows() {
  return state.rows.filter(([capture]) => state.selected.has(capture.id));
}

async function onSelected(what, action) {
  const rows = selectedRows();
  if (!rows.length) { say(`Select the captures to ${what} first`, true); return; }
  try { await action(rows); } catch (error) { say(error.message, true); }
  refresh();
}

$("cmdAdd").addEventListener("click", () => { $("target").focus(); $("create").scrollIntoView({ block: "start" }); });
$("cmdRefresh").addEventListener("click", refresh);
$("cmdStop").addEventListener("click", () => onSelected("stop", async (rows) => {
  const active = rows.filter(([, status]) => ["NotStarted", "Running"].includes(status.packetCaptureStatus));
  await Promise.all(active.map(([capture]) => call("POST", `${capture.id}/stop`)));
  say(`Stopping ${active.length} packet capture(s)`);
}));
$("cmdDelete").addEventListener("click", () => onSelected("delete", async (rows) => {
  if (!confirm(`Delete ${rows.length} packet capture(s)? Their files are kept.`)) return;
  await Promise.all(rows.map(([capture]) => call("DELETE", capture.id)));
  for (const [capture] of rows) { state.selected.delete(capture.id); if (state.details === capture.id) closeDetails(); }
  say(`Deleted ${rows.map(([capture]) => capture.name).join(", ")}`);
}));
$("cmdDownload").addEventListener("click", () => onSelected("download", async (rows) => {
  for (const [capture] of rows) await download(capture);
}));

// Notifications for what happened since the last refresh: started, stopped, failed, uploaded.
function notifyChanges() {
  const now = new Map(state.rows.map(([capture, status]) =>
    [capture.id, { status: status.packetCaptureStatus, stored: Boolean(status.packetWatchStored),
                   name: capture.name, reason: status.stopReason || status.packetWatchErrorMessage || "" }]));
  if (state.seen) {
    for (const [id, current] of now) {
      const before = state.seen.get(id);
      if (before && before.status !== current.status) {
        const what = { Running: "started", Stopped: "stopped", Error: "failed" }[current.status];
        if (what) notify(`${current.name} ${what}${current.reason ? `: ${current.reason}` : ""}`, current.status === "Error");
      }
      if (before && !before.stored && current.stored) notify(`${current.name} uploaded to storage`);
    }
  }
  state.seen = now;
}

function notify(text, isError = false) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (isError) item.className = "error";
  $("notifications").prepend(item);
  while ($("notifications").children.length > 20) $("notifications").lastChild.remove();
}
