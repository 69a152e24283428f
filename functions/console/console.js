// PacketWatch web console: the portal's packet capture page, over the ARM API.
"use strict";
const API_VERSION = "2026-01-01";
const $ = (id) => document.getElementById(id);
const state = { token: "", subscription: "", resourceGroup: "", watcher: "", timer: null, agents: [] };

function watcherPath() {
  return `/subscriptions/${encodeURIComponent(state.subscription)}/resourceGroups/${encodeURIComponent(state.resourceGroup)}` +
    `/providers/Microsoft.Network/networkWatchers/${encodeURIComponent(state.watcher)}`;
}

async function call(method, path, body) {
  const separator = path.includes("?") ? "&" : "?";
  const response = await fetch(`${path}${separator}api-version=${API_VERSION}`, {
    method, headers: { "Authorization": `Bearer ${state.token}`, "Content-Type": "application/json",
                       "X-PacketWatch-Client": "console" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const error = data.error || {};
    throw new Error(`${error.code || response.status}: ${error.message || text}`);
  }
  return data;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function button(td, label, action) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", async () => {
    try { await action(); } catch (error) { say(error.message, true); }
    refresh();
  });
  td.appendChild(b);
}

function fetchFile(url, name) {
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

async function download(capture) {
  const where = await call("GET", `${capture.id}/downloadUrl`);
  if (where.instances) {  // a scale set capture: one file per instance
    const stored = where.instances.filter((instance) => instance.url);
    stored.forEach((instance) => fetchFile(instance.url, `${capture.name}_${instance.instanceId}.cap`));
    const kept = where.instances.filter((instance) => !instance.url).map((i) => `instance ${i.instanceId}: ${i.message}`);
    say([`Downloading ${stored.length} instance files of ${capture.name}`, ...kept].join("; "));
    return;
  }
  if (!where.url) { say(where.message); return; }
  fetchFile(where.url, `${capture.name}.cap`);
  say(`Downloading ${capture.name}`);
}

async function refresh() {
  if (!state.token) return;
  try {
    const list = await call("GET", `${watcherPath()}/packetCaptures`);
    const rows = await Promise.all(list.value.map(async (capture) =>
      [capture, await call("POST", `${capture.id}/queryStatus`)]));
    const body = $("captures").tBodies[0];
    body.replaceChildren();
    for (const [capture, status] of rows) {
      const row = body.insertRow();
      row.dataset.name = capture.name;
      cell(row, capture.name);
      cell(row, capture.properties.target.split("/").pop());
      cell(row, status.packetCaptureStatus, `status status-${status.packetCaptureStatus}`);
      cell(row, status.captureStartTime);
      cell(row, status.stopReason || (status.packetCaptureError || []).join(", "));
      cell(row, status.packetWatchSummary ? status.packetWatchSummary.packets : "");
      cell(row, capture.properties.storageLocation.storagePath ? "yes" : "", "stored");
      const actions = row.insertCell();
      if (["NotStarted", "Running"].includes(status.packetCaptureStatus)) {
        button(actions, "Stop", () => call("POST", `${capture.id}/stop`));
      } else {
        button(actions, "Download", () => download(capture));
      }
      button(actions, "Delete", async () => {
        if (confirm(`Delete packet capture ${capture.name}? Its files are kept.`)) {
          await call("DELETE", capture.id);
          say(`Deleted ${capture.name}`);
        }
      });
    }
  } catch (error) {
    say(error.message, true);
  }
}

const SCALE_SET_PART = /\/virtualMachines\/[^/]+$/i;

function scaleSetOf(vm) {
  return /\/virtualMachineScaleSets\//i.test(vm) ? vm.replace(SCALE_SET_PART, "") : null;
}

async function loadAgents() {
  state.agents = (await call("GET", "/packetwatch/agents")).value;
  fillTargets();
}

function fillTargets() {
  const select = $("target");
  select.replaceChildren();
  if ($("targetType").value === "AzureVMSS") {
    const sets = new Map();
    for (const agent of state.agents) {
      const set = scaleSetOf(agent.vm);
      if (set) sets.set(set, [...(sets.get(set) || []), agent]);
    }
    for (const [set, agents] of sets) {
      const online = agents.filter((agent) => agent.status === "online").length;
      select.add(new Option(`${set.split("/").pop()} (${agents.length} instances, ${online} online)`, set));
    }
  } else {
    for (const agent of state.agents.filter((agent) => !scaleSetOf(agent.vm))) {
      const option = new Option(`${agent.vm.split("/").pop()} (${agent.hostname}, ${agent.status}, seen ` +
                                `${agent.lastSeen})`, agent.vm);
      option.disabled = agent.status !== "online";
      select.add(option);
    }
  }
  fillInstances();
}

function fillInstances() {
  const box = $("instances");
  box.replaceChildren();
  $("instancesBox").hidden = $("targetType").value !== "AzureVMSS";
  for (const agent of state.agents.filter((agent) => scaleSetOf(agent.vm) === $("target").value)) {
    const label = document.createElement("label");
    const check = document.createElement("input");
    check.type = "checkbox";
    check.value = agent.vm.split("/").pop();
    check.checked = agent.status === "online";
    check.disabled = agent.status !== "online";
    label.append(check, ` ${check.value} (${agent.hostname}, ${agent.status})`);
    box.appendChild(label);
  }
}

$("targetType").addEventListener("change", fillTargets);
$("target").addEventListener("change", fillInstances);

function addFilterRow() {
  const row = $("filters").tBodies[0].insertRow();
  const protocol = document.createElement("select");
  for (const value of ["Any", "TCP", "UDP"]) protocol.add(new Option(value, value));
  row.insertCell().appendChild(protocol);
  for (const field of ["localIPAddress", "localPort", "remoteIPAddress", "remotePort"]) {
    const input = document.createElement("input");
    input.dataset.field = field;
    row.insertCell().appendChild(input);
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => row.remove());
  row.insertCell().appendChild(remove);
}

function filters() {
  return Array.from($("filters").tBodies[0].rows).map((row) => {
    const filter = { protocol: row.querySelector("select").value };
    for (const input of row.querySelectorAll("input")) if (input.value.trim()) filter[input.dataset.field] = input.value.trim();
    return filter;
  });
}

$("scope").addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const key of ["token", "subscription", "resourceGroup", "watcher"]) state[key] = $(key).value.trim();
  try {
    await loadAgents();
    say("Connected");
    clearInterval(state.timer);
    state.timer = setInterval(refresh, 1000);
    refresh();
  } catch (error) { say(error.message, true); }
});

$("addFilter").addEventListener("click", addFilterRow);

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const storageLocation = {};
  if ($("storageId").value.trim()) storageLocation.storageId = $("storageId").value.trim();
  if ($("filePath").value.trim()) storageLocation.filePath = $("filePath").value.trim();
  const properties = { target: $("target").value, storageLocation, filters: filters() };
  if ($("targetType").value === "AzureVMSS") {
    properties.targetType = "AzureVMSS";
    const checks = [...$("instances").querySelectorAll("input")];
    if (checks.some((check) => !check.checked)) {
      properties.scope = { include: checks.filter((check) => check.checked).map((check) => check.value) };
    }
  }
  for (const limit of ["bytesToCapturePerPacket", "totalBytesPerSession", "timeLimitInSeconds"]) {
    properties[limit] = Number($(limit).value);
  }
  if (Number($("lookBackSeconds").value)) properties.lookBackSeconds = Number($("lookBackSeconds").value);
  if ($("continuousCapture").value) {
    properties.continuousCapture = $("continuousCapture").value === "true";
    properties.captureSettings = {};
    for (const setting of ["fileCount", "fileSizeInBytes", "sessionTimeLimitInSeconds"]) {
      properties.captureSettings[setting] = Number($(setting).value);
    }
    if ($("localPath").value.trim()) storageLocation.localPath = $("localPath").value.trim();
  }
  try {
    await call("PUT", `${watcherPath()}/packetCaptures/${encodeURIComponent($("name").value.trim())}`, { properties });
    say(`Started ${$("name").value.trim()}`);
    refresh();
  } catch (error) { say(error.message, true); }
});
