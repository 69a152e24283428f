// The details panel of one capture: every property, live status, the error in full, the
// summary (protocols, top talkers as small bars) and where its file is. Used by console.js.
"use strict";

function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function bars(box, entries) {
  box.replaceChildren();
  const largest = Math.max(1, ...entries.map(([, value]) => value));
  for (const [label, value] of entries) {
    const row = document.createElement("div");
    row.className = "bar";
    const name = document.createElement("span");
    name.textContent = label;
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${Math.round((value / largest) * 100)}%`;
    fill.setAttribute("aria-hidden", "true");
    const figure = document.createElement("span");
    figure.textContent = String(value);
    row.append(name, fill, figure);
    box.appendChild(row);
  }
  if (!entries.length) box.textContent = "none yet";
}

function flatten(value, prefix, out) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.push([prefix, Array.isArray(value) ? JSON.stringify(value) : String(value)]);
  }
  return out;
}

function renderDetails(capture, status, where) {
  document.getElementById("details").hidden = false;
  document.getElementById("detailsTitle").textContent = `Details: ${capture.name}`;
  const summary = status.packetWatchSummary || {};
  const live = ["NotStarted", "Running"].includes(status.packetCaptureStatus);
  document.getElementById("detailsStatus").textContent =
    `${status.packetCaptureStatus}${status.stopReason ? ` (${status.stopReason})` : ""}: ` +
    `${summary.packets || 0} packets, ${summary.bytes || 0} bytes` +
    (status.captureStartTime ? `, started ${localTime(status.captureStartTime)}` : "") + (live ? " — live" : "");
  document.getElementById("detailsError").textContent =
    status.packetWatchErrorMessage || (status.packetCaptureError || []).join(", ");
  document.getElementById("detailsFile").textContent = where;
  document.getElementById("detailsDownload").hidden = live;
  bars(document.getElementById("detailsProtocols"), Object.entries(summary.protocols || {}));
  bars(document.getElementById("detailsTalkers"),
       (summary.topTalkers || []).map((t) => [`${t.source} → ${t.destination}`, t.packets]));
  const list = document.getElementById("detailsProperties");
  list.replaceChildren();
  for (const [key, value] of flatten(capture.properties, "", [])) {
    const term = document.createElement("dt");
    term.textContent = key;
    const data = document.createElement("dd");
    data.textContent = value;
    list.append(term, data);
  }
}
