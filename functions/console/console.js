// PacketWatch web console: the portal's packet capture page, over the ARM API.
"use strict";
const API_VERSION = "2026-01-01";
const $ = (id) => document.getElementById(id);
const state = { token: "", subscription: "", resourceGroup: "", watcher: "", timer: null, agents: [], rows: [],
                sort: { key: "started", ascending: false }, details: null, seen: null,
                selected: new Set(), where: new Map(), shown: "", page: 0 };  // where: a capture's file, once settled
const CONNECTION = ["token", "subscription", "resourceGroup", "watcher"];
const EVERY_WATCHER = "*";
const PAGE_ROWS = 100;
// What a field holds as typed (a Fluent combobox commits its value only when it loses focus).
const typed = (id) => (($(id).control ? $(id).control.value : $(id).value) || "").trim();

function watcherPath(group = state.resourceGroup, watcher = state.watcher) {
  return `/subscriptions/${encodeURIComponent(state.subscription)}/resourceGroups/${encodeURIComponent(group)}` +
    `/providers/Microsoft.Network/networkWatchers/${encodeURIComponent(watcher)}`;
}

async function watchers() {
  return (await call("GET", `/subscriptions/${encodeURIComponent(state.subscription)}/providers/Microsoft.Network/networkWatchers`)).value;
}

// Where a new capture goes: the chosen watcher, or with every watcher shown, the target's regional one.
function createPath() {
  if (state.watcher !== EVERY_WATCHER) return watcherPath();
  const agent = state.agents.find((a) => a.vm === $("target").value || scaleSetOf(a.vm) === $("target").value);
  if (!agent || !agent.location) throw new Error("choose a network watcher to create in: this target's agent reports no region");
  return watcherPath("NetworkWatcherRG", `NetworkWatcher_${agent.location}`);
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
  const b = fluent("fluent-button", { appearance: "stealth" }, label);
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

// Each capture with its status, in one request per watcher ($expand=status), not one per capture.
async function listCaptures() {
  const list = (watcher) => call("GET", `${watcher}/packetCaptures?$expand=status`);
  if (state.watcher !== EVERY_WATCHER) return (await list(watcherPath())).value;
  const lists = await Promise.all((await watchers()).map((w) => list(w.id)));
  return lists.flatMap((answer) => answer.value);
}

async function refresh() {
  if (!state.token) return;
  try {
    const captures = await listCaptures();
    state.rows = captures.map((capture) => [capture, capture.packetWatchStatus]);
    const present = new Set(captures.map((capture) => capture.id));
    for (const id of state.selected) if (!present.has(id)) state.selected.delete(id);
    notifyChanges();
    render();
    if (state.details) await openDetails(state.details, false);
  } catch (error) {
    say(error.message, true);
  }
}

const SORT_KEYS = {
  name: ([capture]) => capture.name.toLowerCase(), target: ([capture]) => capture.properties.target.toLowerCase(),
  status: ([, status]) => status.packetCaptureStatus, started: ([, status]) => status.captureStartTime || "",
};

function render() {
  const query = $("search").value.trim().toLowerCase();
  const key = SORT_KEYS[state.sort.key];
  let rows = state.rows.filter(([capture, status]) => !query ||
    [capture.name, capture.properties.target, status.packetCaptureStatus].join(" ").toLowerCase().includes(query))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (state.sort.ascending ? 1 : -1));
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  state.page = Math.min(state.page, pages - 1);
  const first = state.page * PAGE_ROWS;
  $("pageInfo").textContent = rows.length > PAGE_ROWS ?
    `${first + 1}-${Math.min(first + PAGE_ROWS, rows.length)} of ${rows.length}` : "";
  $("prevPage").hidden = $("nextPage").hidden = rows.length <= PAGE_ROWS;
  $("prevPage").disabled = state.page === 0;
  $("nextPage").disabled = state.page >= pages - 1;
  rows = rows.slice(first, first + PAGE_ROWS);  // a grid of 10,000 captures shows a page at a time
  const shown = JSON.stringify([query, state.sort, state.rows.length, first, rows.map(([capture, status]) => [capture.id,
    status.packetCaptureStatus, status.stopReason, status.captureStartTime, status.packetWatchStored,
    (status.packetCaptureError || []).join(), status.packetWatchSummary && status.packetWatchSummary.packets])]);
  if (shown === state.shown) return;  // nothing a reader would see changed: the rows (and any focus in them) stay
  state.shown = shown;
  const body = $("captures").tBodies[0];
  body.replaceChildren();
  if (!rows.length) {
    const empty = body.insertRow();
    empty.className = "empty";
    const td = cell(empty, state.rows.length ? "No capture matches the search." :
      "No packet captures here yet. Add one with the form: pick a VM, a name and where the file goes.");
    td.colSpan = 9;
  }
  for (const [capture, status] of rows) {
    const row = body.insertRow();
    row.dataset.name = capture.name;
    const pick = fluent("fluent-checkbox", { "aria-label": `Select ${capture.name}` });
    pick.checked = state.selected.has(capture.id);
    pick.addEventListener("change", () => { if (pick.checked) state.selected.add(capture.id); else state.selected.delete(capture.id); });
    row.insertCell().appendChild(pick);
    const name = row.insertCell();
    const open = document.createElement("button");
    open.className = "link";
    open.textContent = capture.name;
    open.title = "Show the details";
    open.addEventListener("click", () => openDetails(capture.id, true));
    name.appendChild(open);
    cell(row, capture.properties.target.split("/").pop());
    cell(row, status.packetCaptureStatus, `status status-${status.packetCaptureStatus}`);
    cell(row, localTime(status.captureStartTime));
    cell(row, status.stopReason || (status.packetCaptureError || []).join(", "));
    cell(row, status.packetWatchSummary ? status.packetWatchSummary.packets : "");
    cell(row, status.packetWatchStored ? "yes" : "", "stored");
    const actions = row.insertCell();
    if (["NotStarted", "Running"].includes(status.packetCaptureStatus)) {
      button(actions, "Stop", () => call("POST", `${capture.id}/stop`));
    } else {
      button(actions, "Download", () => download(capture));
    }
    button(actions, "Delete", async () => {
      if (confirm(`Delete packet capture ${capture.name}? Its files are kept.`)) {
        await call("DELETE", capture.id);
        if (state.details === capture.id) closeDetails();
        say(`Deleted ${capture.name}`);
      }
    });
  }
}

async function openDetails(id, announce) {
  const found = state.rows.find(([capture]) => capture.id === id);
  if (!found) { closeDetails(); return; }
  const [capture, status] = found;
  state.details = id;
  const location = capture.properties.storageLocation;
  let where = location.filePath ? `on the VM ${capture.properties.target.split("/").pop()} at ${location.filePath}` :
    "in the agent's spool until it is uploaded";
  if (state.where.has(id)) {
    where = state.where.get(id);
  } else if (!["NotStarted", "Running"].includes(status.packetCaptureStatus)) {
    try {  // asked once the capture has ended, and kept once the file has found its place
      const answer = await call("GET", `${capture.id}/downloadUrl`);
      if (answer.blob) where = `in storage: ${answer.blob}` + (location.filePath ? `, and ${where}` : "");
      else if (answer.instances) where = answer.instances.map((i) => `instance ${i.instanceId}: ${i.blob || i.message}`).join("; ");
      else if (answer.message) where = `${answer.message} (VM ${answer.target.split("/").pop()})`;
      if (answer.blob || !location.storageId) state.where.set(id, where);
    } catch (error) { where = error.message; }
  }
  renderDetails(capture, status, where);
  if (announce) $("details").scrollIntoView({ block: "nearest" });
}

function closeDetails() {
  state.details = null;
  $("details").hidden = true;
}

const SCALE_SET_PART = /\/virtualMachines\/[^/]+$/i;

function scaleSetOf(vm) {
  return /\/virtualMachineScaleSets\//i.test(vm) ? vm.replace(SCALE_SET_PART, "") : null;
}

async function loadAgents() {
  state.agents = (await call("GET", "/packetwatch/agents")).value;
  return fillTargets();
}

function option(value, text, disabled = false) {
  const made = fluent("fluent-option", { value }, text);
  if (disabled) made.setAttribute("disabled", "");
  return made;
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
      select.appendChild(option(set, `${set.split("/").pop()} (${agents.length} instances, ${online} online)`));
    }
  } else {
    for (const agent of state.agents.filter((agent) => !scaleSetOf(agent.vm))) {
      select.appendChild(option(agent.vm, `${agent.vm.split("/").pop()} (${agent.hostname}, ${agent.status}, ` +
                                `seen ${localTime(agent.lastSeen)})`, agent.status !== "online"));
    }
  }
  // A Fluent select takes in new options on its next frame: the first selectable is chosen now.
  const first = [...select.children].find((choice) => !choice.hasAttribute("disabled"));
  if (first) first.setAttribute("selected", "");
  fillInstances(first ? first.value : "");
  return first ? first.value : "";
}

function fillInstances(target = $("target").value) {
  const box = $("instances");
  box.replaceChildren();
  $("instancesBox").hidden = $("targetType").value !== "AzureVMSS";
  for (const agent of state.agents.filter((agent) => scaleSetOf(agent.vm) === target)) {
    const instance = agent.vm.split("/").pop();
    const check = fluent("fluent-checkbox", { value: instance }, `${instance} (${agent.hostname}, ${agent.status})`);
    check.checked = agent.status === "online";
    check.disabled = agent.status !== "online";
    box.appendChild(check);
  }
}

$("targetType").addEventListener("change", () => defaultName(fillTargets()));
$("target").addEventListener("change", () => { fillInstances(); defaultName(); });
$("name").addEventListener("input", () => { $("name").dataset.typed = "yes"; });

async function connect(saved = null) {
  for (const key of CONNECTION) state[key] = saved ? saved[key] : typed(key);
  if (!state.watcher) state.watcher = EVERY_WATCHER;
  const offered = !state.subscription;  // then the subscriptions are fetched here, once
  if (offered) {
    try { await offerScope(); } catch (error) { say(error.message, true); return; }
    if (!state.subscription) { say("This token covers no subscription the API knows yet: type one.", true); return; }
  }
  for (const key of CONNECTION) sessionStorage.setItem(`packetwatch.${key}`, state[key]);  // this tab only
  try {
    const target = await loadAgents();
    await fillWatchers();
    await fillStorageAccounts();
    if (!offered) await fillSubscriptions();
    defaultName(target);
    say("Connected");
    clearInterval(state.timer);
    state.timer = setInterval(refresh, 1000);
    refresh();
  } catch (error) { say(error.message, true); }
}

async function fillStorageAccounts() {
  const accounts = (await call("GET", "/packetwatch/storageAccounts")).value;
  $("storageId").replaceChildren(...accounts.map((a) => option(a.name, a.name)));
}

// The portal's default name: the target's name and the time, changed with the target until typed over.
function defaultName(chosen = $("target").value) {
  if ($("name").dataset.typed) return;
  const target = (chosen || "capture").split("/").pop();
  const now = new Date();
  const stamp = [now.getFullYear(), now.getMonth() + 1, now.getDate(), now.getHours(), now.getMinutes(),
                 now.getSeconds()].map((n) => String(n).padStart(2, "0")).join("");
  $("name").value = `${target}_${stamp}`.slice(0, 80);
}

async function fillSubscriptions() {
  const found = (await call("GET", "/subscriptions")).value;
  $("subscription").replaceChildren(...found.map((s) => option(s.subscriptionId, s.subscriptionId)));
}

// The subscriptions the token covers, offered as soon as it is entered and the first
// preselected (the portal's default subscription): a token that covers one subscription
// connects alone, to every watcher ("*"); Connect then offers its resource groups and watchers.
async function offerScope() {
  state.token = typed("token");
  if (!state.token) return;
  await fillSubscriptions();
  const box = $("subscription");
  const first = box.querySelector("fluent-option");
  if (!typed("subscription") && first) {
    box.value = first.value;
    if (box.control) box.control.value = first.value;
  }
  state.subscription = typed("subscription");
}

$("token").addEventListener("change", () => offerScope().catch(() => {}));

async function fillWatchers() {
  const found = await watchers();
  $("watcher").replaceChildren(option(EVERY_WATCHER, EVERY_WATCHER), ...found.map((w) => option(w.name, w.name)));
  $("resourceGroup").replaceChildren(...[...new Set(found.map((w) => w.id.split("/")[4]))].map((g) => option(g, g)));
}

$("scope").addEventListener("submit", (event) => { event.preventDefault(); connect(); });
$("search").addEventListener("input", () => { state.page = 0; render(); });
$("prevPage").addEventListener("click", () => { state.page -= 1; render(); });
$("nextPage").addEventListener("click", () => { state.page += 1; render(); });
$("closeDetails").addEventListener("click", closeDetails);
$("detailsDownload").addEventListener("click", async () => {
  const found = state.rows.find(([capture]) => capture.id === state.details);
  if (found) try { await download(found[0]); } catch (error) { say(error.message, true); }
});
for (const header of document.querySelectorAll("button.sort")) {
  header.addEventListener("click", () => {
    const key = header.dataset.key;
    state.sort = { key, ascending: state.sort.key === key ? !state.sort.ascending : true };
    render();
  });
}
// Signed in once: the connection is remembered for this browser tab's session.
if (sessionStorage.getItem("packetwatch.token")) {
  const saved = Object.fromEntries(CONNECTION.map((key) => [key, sessionStorage.getItem(`packetwatch.${key}`) || ""]));
  for (const key of CONNECTION) $(key).value = saved[key];
  connect(saved);
}

$("addFilter").addEventListener("click", addFilterRow);

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const storageLocation = {};
  const account = typed("storageId");
  if (account) {  // a name is looked up in the resource group, as az does
    storageLocation.storageId = account.startsWith("/") ? account : `/subscriptions/${state.subscription}/resourceGroups/` +
      `${state.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${account}`;
  }
  if ($("filePath").value.trim()) storageLocation.filePath = $("filePath").value.trim();
  const properties = { target: $("target").value, storageLocation, filters: filters() };
  if ($("targetType").value === "AzureVMSS") {
    properties.targetType = "AzureVMSS";
    const checks = [...$("instances").querySelectorAll("fluent-checkbox")];
    if (checks.some((check) => !check.checked)) {
      properties.scope = { include: checks.filter((check) => check.checked).map((check) => check.getAttribute("value")) };
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
    await call("PUT", `${createPath()}/packetCaptures/${encodeURIComponent($("name").value.trim())}`, { properties });
    say(`Started ${$("name").value.trim()}`);
    delete $("name").dataset.typed;
    defaultName();
    refresh();
  } catch (error) { say(error.message, true); }
});
