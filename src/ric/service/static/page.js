// The cloud's view of one tenant: its stored ciphertexts as thumbnails, grouped by label.
// Token: from the URL fragment (#token=..., never sent to the server) or the form; kept in sessionStorage and sent
// only as an Authorization header. Untrusted strings (names, class names) are set with textContent only.
"use strict";
const KEY = "ric-token";
const $ = (id) => document.getElementById(id);

function takeToken() {
  const m = location.hash.match(/^#token=(.+)$/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(KEY);
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fail(msg) {
  const s = $("summary");
  s.textContent = msg;
  s.className = "error";
  document.body.dataset.state = "error";
}

async function api(path, token) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r;
}

async function listAll(token) {
  const out = [];
  for (let offset = 0; ; ) {
    const page = await (await api("/v1/images?limit=1000&offset=" + offset, token)).json();
    out.push(...page.images);
    offset += page.images.length;
    if (!page.images.length || offset >= page.total) return out;
  }
}

async function thumbnail(img, token) {
  const fig = el("figure", { "data-id": img.id, "data-label": String(img.label) });
  const pic = el("img", { alt: "ciphertext " + img.name, title: img.name + " (" + img.size + " bytes)" });
  fig.append(pic, el("figcaption", {}, img.name));
  const blob = await (await api("/v1/images/" + img.id, token)).blob();
  pic.src = URL.createObjectURL(blob);
  return fig;
}

async function show(token) {
  $("logout").hidden = false;
  const images = await listAll(token);
  const groups = new Map();
  for (const img of images) {
    if (!groups.has(img.label)) groups.set(img.label, []);
    groups.get(img.label).push(img);
  }
  const labels = [...groups.keys()].sort((a, b) => a - b);
  const main = $("groups");
  main.replaceChildren();
  for (const label of labels) {
    const items = groups.get(label);
    const sec = el("section", { class: "group", "data-label": String(label), "data-count": String(items.length) });
    const h = el("h2", {}, "label " + label + " · class " + JSON.stringify(items[0].class) + " ");
    h.append(el("span", { class: "count" }, "(" + items.length + (items.length === 1 ? " image)" : " images)")));
    const row = el("div", { class: "thumbs" });
    sec.append(h, row);
    main.append(sec);
    for (let i = 0; i < items.length; i += 8) {  // at most 8 requests at a time
      const figs = await Promise.all(items.slice(i, i + 8).map((img) => thumbnail(img, token)));
      row.append(...figs);
    }
  }
  const s = $("summary");
  s.textContent = images.length + " ciphertexts in " + labels.length + " labels";
  s.dataset.count = String(images.length);
  s.dataset.labels = labels.join(",");
  document.body.dataset.state = "ready";
}

function login() {
  $("login").hidden = false;
  $("summary").textContent = "Enter a tenant token to see its store.";
  document.body.dataset.state = "login";
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    $("login").hidden = true;
    start();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("groups").replaceChildren();
    $("logout").hidden = true;
    login();
  });
  start();
});

function start() {
  const token = takeToken();
  if (!token) return login();
  // A timer while loading: headless browsers with a virtual-time budget (scripts/check_page.py) then advance time
  // in small steps instead of jumping to the end of the budget between two fetches.
  const keepAlive = setInterval(() => {}, 50);
  show(token).finally(() => clearInterval(keepAlive)).catch((e) => {
    if (e.status === 401) {
      sessionStorage.removeItem(KEY);
      login();
    }
    fail("Could not load the store: " + e.message);
  });
}
