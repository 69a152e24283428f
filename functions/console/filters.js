// The create form's filter rows: labelled inputs with examples, each value checked as it is
// typed (the API checks it again, exactly), and the rows as ARM filters.
"use strict";

const PORT_LIST = /^\s*\d{1,5}(\s*-\s*\d{1,5})?(\s*[;,]\s*\d{1,5}(\s*-\s*\d{1,5})?)*\s*[;,]?\s*$/;
const IPV4 = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}";
const ADDRESS = `(${IPV4}(/(3[0-2]|[12]?\\d))?(\\s*-\\s*${IPV4})?|[0-9a-fA-F:]*:[0-9a-fA-F:.]*(/\\d{1,3})?)`;
const ADDRESS_LIST = new RegExp(`^\\s*${ADDRESS}(\\s*[;,]\\s*${ADDRESS})*\\s*[;,]?\\s*$`);

function checkFilterValue(input) {
  const value = input.value.trim();
  const isPort = input.dataset.field.endsWith("Port");
  const ok = !value || (isPort ? PORT_LIST.test(value) && value.match(/\d+/g).every((p) => Number(p) <= 65535)
                               : ADDRESS_LIST.test(value));
  input.setAttribute("aria-invalid", ok ? "false" : "true");
  input.title = ok ? "" : (isPort ? "ports 0-65535: 80, 1000-2000, 80;443" :
                                    "addresses: 10.0.0.4, 10.0.0.0/24, 10.0.0.1-10.0.0.9, separated by ; or ,");
}

const FILTER_FIELDS = [
  ["localIPAddress", "Local IP address", "10.0.0.4, 10.0.0.0/24"], ["localPort", "Local port", "80, 1000-2000"],
  ["remoteIPAddress", "Remote IP address", "20.0.0.1-20.0.0.9"], ["remotePort", "Remote port", "443;8443"],
];

// Fluent UI's controls, made as the markup would make them.
function fluent(tag, attributes = {}, text = "") {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text) element.textContent = text;
  return element;
}

function addFilterRow() {
  const row = fluent("div", { role: "listitem", class: "filter" });
  const number = $("filters").children.length + 1;
  const protocol = fluent("fluent-select", { "aria-label": `Filter ${number} protocol`, "data-field": "protocol" });
  for (const value of ["Any", "TCP", "UDP"]) protocol.appendChild(fluent("fluent-option", { value }, value));
  row.appendChild(protocol);
  for (const [field, label, example] of FILTER_FIELDS) {
    const input = fluent("fluent-text-field", { "data-field": field, placeholder: example,
                                                "aria-label": `Filter ${number} ${label.toLowerCase()}` });
    input.addEventListener("input", () => checkFilterValue(input));
    row.appendChild(input);
  }
  const remove = fluent("fluent-button", { appearance: "stealth", "aria-label": `Remove filter ${number}` }, "Remove");
  remove.addEventListener("click", () => row.remove());
  row.appendChild(remove);
  $("filters").appendChild(row);
}

function filters() {
  return Array.from($("filters").children).map((row) => {
    const filter = { protocol: row.querySelector("fluent-select").value || "Any" };
    for (const input of row.querySelectorAll("fluent-text-field")) {
      if (input.value.trim()) filter[input.dataset.field] = input.value.trim();
    }
    return filter;
  });
}
