"use strict";
// The page of `verifier serve`: plain JavaScript over the /v1 API, no external files.
// The API key lives in sessionStorage (this tab only), or in localStorage when the
// user ticks "remember"; it is sent in the Authorization header, never in a URL.

const $ = (id) => document.getElementById(id);
const STORE_KEY = "verifier-key";
let key = sessionStorage.getItem(STORE_KEY) || localStorage.getItem(STORE_KEY) || "";
let threshold = null;

function explain(status, body) {
  const msg = body && body.message ? body.message : "the server answered " + status;
  if (status === 401) return "Your API key was refused (" + msg + "). Enter a valid key above.";
  if (status === 403) return "Your API key may not do this: " + msg + ".";
  if (status === 503) return "The server is busy or not ready: " + msg;
  return msg + (body && body.code ? " [" + body.code + "]" : "");
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (key) headers.Authorization = "Bearer " + key;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new Error("The server cannot be reached (" + err.message + ").");
  }
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    const error = new Error(explain(response.status, body));
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return response;
}

async function guarded(errorId, work) {
  const box = $(errorId);
  box.textContent = "";
  try { await work(); } catch (err) { box.textContent = err.message; }
}

// -- key ------------------------------------------------------------------------------
function showKeyState() {
  $("key-state").textContent = key ? "key set" + (localStorage.getItem(STORE_KEY) ? " (remembered)" : " (this tab only)") : "no key";
}
$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  key = $("key").value.trim();
  $("key").value = "";
  sessionStorage.setItem(STORE_KEY, key);
  if ($("remember").checked) localStorage.setItem(STORE_KEY, key); else localStorage.removeItem(STORE_KEY);
  showKeyState();
  loadModel();
});
$("forget").addEventListener("click", () => {
  key = ""; sessionStorage.removeItem(STORE_KEY); localStorage.removeItem(STORE_KEY); showKeyState();
});

// -- tabs -----------------------------------------------------------------------------
const loaders = { gallery: () => loadPeople(), reports: () => loadRuns(), people: () => loadLatestRun() };
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll(".tab").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = (s.dataset.tab || s.id) !== tab.dataset.tab; });
  if (loaders[tab.dataset.tab]) loaders[tab.dataset.tab]();
}));

async function loadModel() {
  try {
    const models = await (await api("/v1/models")).json();
    const serving = models.find((m) => m.serving);
    threshold = serving ? serving.threshold : null;
  } catch (_) { /* shown when the user acts */ }
}

// -- pictures that need the key ---------------------------------------------------------
async function faceUrl(photoId) {
  const blob = await (await api("/v1/photos/" + photoId + "/face")).blob();
  return URL.createObjectURL(blob);
}
function img(alt, cls) {
  const el = document.createElement("img");
  el.alt = alt; if (cls) el.className = cls;
  return el;
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function bar(distance, limit) {
  // one scale for every bar (the threshold at the middle, twice it full), so that
  // distances compare by length across cards
  const scale = 2 * (limit || 0.5);
  const b = el("div", undefined, "bar" + (limit !== null && distance <= limit ? " pass" : ""));
  b.setAttribute("role", "img");
  b.setAttribute("aria-label", "distance " + distance.toFixed(3) + (limit !== null ? " against threshold " + limit.toFixed(3) : ""));
  const fill = el("span"); fill.style.width = Math.min(100, 100 * distance / scale) + "%";
  b.appendChild(fill);
  if (limit !== null) { const mark = el("i"); mark.style.left = (100 * limit / scale) + "%"; b.appendChild(mark); }
  return b;
}

// -- faces drawn on a photo -------------------------------------------------------------
// The photo as the browser shows it (EXIF rotation applied, like the boxes), scaled to
// the page; each face is a button placed in percent of the photo, so it scales too.
function facesOnPhoto(file, width, height, faces, label, onChoose) {
  const fig = el("figure", undefined, "photo");
  const frame = el("div", undefined, "frame");
  fig.appendChild(frame);
  const url = URL.createObjectURL(file);
  const shown = img("Your photo with " + faces.length + " face" + (faces.length === 1 ? "" : "s") + " outlined");
  shown.src = url;
  shown.addEventListener("load", () => URL.revokeObjectURL(url));
  frame.appendChild(shown);
  const buttons = faces.map((face, i) => {
    const [left, top, w, h] = face.box;
    const b = el("button", undefined, "facebox");
    b.type = "button";
    b.style.left = (100 * left / width) + "%"; b.style.top = (100 * top / height) + "%";
    b.style.width = (100 * w / width) + "%"; b.style.height = (100 * h / height) + "%";
    const text = label(face, i);
    b.appendChild(el("span", text));
    b.setAttribute("aria-label", "Face " + (i + 1) + " of " + faces.length + ": " + text);
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", () => {
      buttons.forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      onChoose(i);
    });
    frame.appendChild(b);
    return b;
  });
  return { fig, buttons };
}

// -- search ---------------------------------------------------------------------------
function nameOf(face) {
  return face.unknown ? "unknown" : face.matches[0].identity;
}
function showFace(answer, face, into) {
  into.textContent = "";
  const probe = el("div", undefined, "probe");
  const chip = img("The face chosen in your photo, aligned", "chip");
  chip.src = face.chip;
  probe.appendChild(chip);
  const best = face.matches[0];
  const verdict = face.reason === "poor_quality"
    ? el("p", "Too poor to judge: no name for this face (quality under the server's floor)", "verdict none")
    : face.unknown
    ? el("p", "No match in the gallery" + (best ? " (nearest: " + best.identity + ")" : ""), "verdict none")
    : el("p", "Same person: " + best.identity, "verdict same");
  verdict.id = "verdict";
  const side = el("div"); side.appendChild(verdict);
  side.appendChild(el("p", "model " + answer.model +
    (answer.threshold !== null ? " · threshold " + answer.threshold.toFixed(3) : " · not calibrated") +
    (face.score !== null ? " · detector score " + face.score.toFixed(3) : "") +
    (face.quality ? " · quality " + face.quality.score.toFixed(2) +
      (face.quality.reasons.length ? " (" + face.quality.reasons.join(", ") + ")" : "") : ""), "small"));
  probe.appendChild(side);
  into.appendChild(probe);
  const cards = el("ol", undefined, "cards");
  cards.setAttribute("aria-label", "Nearest identities");
  for (const m of face.matches) {
    const card = el("li", undefined, "card" + (m.passes ? " pass" : ""));
    const pic = img("Nearest gallery photo of " + m.identity, "chip");
    card.appendChild(pic);
    const text = el("div");
    text.appendChild(el("h3", m.rank + ". " + m.identity));
    text.appendChild(el("p", "distance " + m.distance.toFixed(3) + (m.passes === null ? "" : m.passes ? " · same person" : " · different"), "small"));
    text.appendChild(bar(m.distance, answer.threshold));
    card.appendChild(text);
    cards.appendChild(card);
    faceUrl(m.photo_id).then((u) => { pic.src = u; }).catch(() => {});
  }
  into.appendChild(cards);
}
async function search(file) {
  await guarded("search-error", async () => {
    const out = $("search-result");
    out.textContent = "Searching…";
    const form = new FormData();
    form.append("photo", file, file.name || "pasted.png");
    form.append("k", $("search-k").value || "5");
    form.append("chips", "true");
    let answer;
    try { answer = await (await api("/v1/search", { method: "POST", body: form })).json(); }
    catch (err) { out.textContent = ""; throw err; }
    out.textContent = "";
    const n = answer.faces.length;
    const summary = el("p", n === 1 ? "One face: " + nameOf(answer.faces[0]) + "."
      : n + " faces, largest first: " + answer.faces.map(nameOf).join(", ") + ". Choose a face to see its matches.", "small");
    summary.id = "faces-summary";
    const detail = el("div", undefined, "face-detail");
    const { fig, buttons } = facesOnPhoto(file, answer.width, answer.height, answer.faces, nameOf,
      (i) => showFace(answer, answer.faces[i], detail));
    out.appendChild(fig);
    out.appendChild(summary);
    out.appendChild(detail);
    buttons[0].setAttribute("aria-pressed", "true");
    showFace(answer, answer.faces[0], detail);
  });
}
$("search-file").addEventListener("change", (e) => e.target.files[0] && search(e.target.files[0]));
$("search-camera").addEventListener("change", (e) => e.target.files[0] && search(e.target.files[0]));
const drop = $("search-drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const file = e.dataTransfer.files[0]; if (file) search(file);
});
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("search-file").click(); } });
document.addEventListener("paste", (e) => {
  if ($("search").hidden) return;
  const item = [...(e.clipboardData || {}).items || []].find((i) => i.type.startsWith("image/"));
  if (item) search(item.getAsFile());
});

// -- verify ---------------------------------------------------------------------------
// Which face of each photo is compared (0: the largest); a photo with several faces
// shows them outlined, and choosing another compares again.
const verifyFace = { a: 0, b: 0 };
for (const side of ["a", "b"]) {
  $("verify-" + side).addEventListener("change", () => { verifyFace[side] = 0; $("verify-pick-" + side).textContent = ""; });
}
async function showVerifyPicker(side, chosen) {
  const holder = $("verify-pick-" + side);
  const file = $("verify-" + side).files[0];
  const form = new FormData();
  form.append("photo", file);
  const found = await (await api("/v1/detect", { method: "POST", body: form })).json();
  holder.textContent = "";
  holder.appendChild(el("p", "This photo shows " + found.faces.length + " faces; choose the one to compare.", "small"));
  const { fig, buttons } = facesOnPhoto(file, found.width, found.height, found.faces,
    (face, i) => (i === chosen ? "compared" : "face " + (i + 1)),
    (i) => { verifyFace[side] = i; compare(); });
  if (buttons[chosen]) buttons[chosen].setAttribute("aria-pressed", "true");
  holder.appendChild(fig);
}
function compare() {
  return guarded("verify-error", async () => {
    const out = $("verify-result");
    out.textContent = "Comparing…";
    const form = new FormData();
    form.append("photo_a", $("verify-a").files[0]);
    form.append("photo_b", $("verify-b").files[0]);
    form.append("face_a", String(verifyFace.a));
    form.append("face_b", String(verifyFace.b));
    form.append("chips", "true");
    let v;
    try { v = await (await api("/v1/verify", { method: "POST", body: form })).json(); }
    catch (err) { out.textContent = ""; throw err; }
    out.textContent = "";
    for (const [id, src, name] of [["verify-chip-a", v.chip_a, v.photo_a], ["verify-chip-b", v.chip_b, v.photo_b]]) {
      const chip = $(id); chip.src = src; chip.alt = "Aligned face of " + name; chip.hidden = false;
    }
    const verdict = el("p", v.reason === "poor_quality" ? "Cannot tell: a face is too poor to judge"
      : v.same ? "Same person" : "Different people", "verdict " + (v.same ? "same" : "none"));
    verdict.id = "verify-verdict";
    out.appendChild(verdict);
    out.appendChild(el("p", "distance " + v.distance.toFixed(3) + " against threshold " + v.threshold.toFixed(3) + " (model " + v.model + ")", "small"));
    out.appendChild(bar(v.distance, v.threshold));
    for (const side of ["a", "b"]) {
      if ((v["faces_" + side] || 0) > 1) await showVerifyPicker(side, v["face_" + side]);
      else $("verify-pick-" + side).textContent = "";
    }
  });
}
$("verify-form").addEventListener("submit", (e) => { e.preventDefault(); compare(); });

// -- gallery --------------------------------------------------------------------------
const PAGE = 12;
let offset = 0;
const STRIP = 6;   // faces shown per person (GET /v1/identities/{name}/faces)
const THUMB = 56;  // pixels of each
async function loadPeople() {
  await guarded("gallery-error", async () => {
    const page = await (await api("/v1/identities?offset=" + offset + "&limit=" + PAGE)).json();
    const list = $("people");
    list.textContent = "";
    $("page").textContent = page.total ? (offset + 1) + "–" + Math.min(offset + PAGE, page.total) + " of " + page.total : "no people yet";
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + PAGE >= page.total;
    for (const person of page.items) {
      const li = el("li", undefined, "person");
      const head = el("h3");
      const open = el("button", person.name + " · " + person.photos + " face" + (person.photos === 1 ? "" : "s"), "open");
      open.type = "button";
      open.setAttribute("aria-label", "Show every face of " + person.name);
      open.addEventListener("click", () => showPerson(person.name));
      head.appendChild(open);
      li.appendChild(head);
      const thumbs = el("div", undefined, "thumbs");
      li.appendChild(thumbs);
      // placeholders of the final size at once; the faces arrive as one strip per person
      const shown = Math.min(person.photos, STRIP);
      const faces = [];
      for (let i = 0; i < shown; i++) {
        const fig = el("figure", undefined, "loading");
        const face = img("Face " + (i + 1) + " of " + person.name);
        face.style.objectPosition = -(i * THUMB) + "px 0";
        fig.appendChild(face);
        thumbs.appendChild(fig);
        faces.push([fig, face]);
      }
      if (person.photos > STRIP) {
        const more = el("span", "+" + (person.photos - STRIP), "more");
        more.title = (person.photos - STRIP) + " more photo" + (person.photos - STRIP === 1 ? "" : "s") + " not shown";
        thumbs.appendChild(more);
      }
      const problem = el("p", undefined, "error");
      problem.setAttribute("role", "alert");
      li.appendChild(problem);
      const remove = el("button", "Remove " + person.name);
      remove.type = "button";
      remove.addEventListener("click", () => removeIdentity(person.name));
      li.appendChild(remove);
      list.appendChild(li);
      const who = encodeURIComponent(person.name);
      api("/v1/identities/" + who).then((r) => r.json()).then((detail) => {
        detail.photos.slice(0, shown).forEach((photo, i) => {
          const [fig, face] = faces[i];
          face.alt = "Photo " + photo.id + " of " + person.name;
          const del = el("button", "×", "x");
          del.type = "button";
          del.setAttribute("aria-label", "Remove photo " + photo.id + " of " + person.name);
          del.addEventListener("click", () => removePhoto(photo.id));
          fig.appendChild(del);
        });
      }).catch((e) => { problem.textContent = person.name + ": " + e.message; });
      api("/v1/identities/" + who + "/faces?limit=" + STRIP + "&size=" + THUMB).then((r) => r.blob()).then((blob) => {
        const url = URL.createObjectURL(blob);
        for (const [fig, face] of faces) {
          face.addEventListener("load", () => fig.classList.remove("loading"), { once: true });
          face.src = url;
        }
      }).catch((e) => {
        for (const [fig] of faces) fig.classList.replace("loading", "failed");
        problem.textContent = "Faces of " + person.name + " could not be shown: " + e.message;
      });
    }
  });
}
// -- one person's faces: each face cropped from its photo, the photo a click away with
// every person named in it, and faces moved to another person (a group split in two)
let shownPerson = null;
async function showPerson(name) {
  await guarded("gallery-error", async () => {
    const detail = await (await api("/v1/identities/" + encodeURIComponent(name))).json();
    shownPerson = detail.name;
    $("person-title").textContent = detail.name + " · " + detail.photos.length + " face" + (detail.photos.length === 1 ? "" : "s");
    const list = $("person-faces");
    list.textContent = "";
    $("person-photo").textContent = "";
    for (const photo of detail.photos) {
      const li = el("li", undefined, "face-entry");
      const choose = document.createElement("input");
      choose.type = "checkbox"; choose.value = String(photo.id); choose.id = "choose-" + photo.id;
      const label = document.createElement("label");
      label.htmlFor = choose.id;
      const face = img("Face " + photo.id + " of " + detail.name, "chip");
      faceUrl(photo.id).then((url) => { face.src = url; }).catch(() => face.classList.add("failed"));
      label.appendChild(face);
      const where = (photo.source || "photo " + photo.id) + (photo.others.length ? ", face " + (photo.face_index + 1) : "");
      label.appendChild(el("span", where, "small"));
      if (photo.others.length) {
        label.appendChild(el("span", "with " + photo.others.map((o) => o.identity).join(", "), "with"));
      }
      li.append(choose, label);
      const see = el("button", "Photo");
      see.type = "button";
      see.setAttribute("aria-label", "Show the photo of face " + photo.id + " with everyone named in it");
      see.addEventListener("click", () => showGalleryPhoto(photo.id));
      li.appendChild(see);
      list.appendChild(li);
    }
    $("person-view").hidden = false;
  });
}
async function showGalleryPhoto(id) {
  await guarded("gallery-error", async () => {
    const [detail, blob] = await Promise.all([
      api("/v1/photos/" + id).then((r) => r.json()),
      api("/v1/photos/" + id + "/image").then((r) => r.blob())]);
    const into = $("person-photo");
    into.textContent = "";
    const faces = detail.faces.filter((f) => f.box);
    const { fig, buttons } = facesOnPhoto(blob, detail.width, detail.height, faces, (f) => f.identity,
      (i) => { if (faces[i].identity !== shownPerson) showPerson(faces[i].identity); });
    const mine = faces.findIndex((f) => f.id === id);
    if (mine >= 0) buttons[mine].setAttribute("aria-pressed", "true");
    into.appendChild(el("p", (detail.source || "Photo " + id) + ": " + detail.faces.map((f) => f.identity).join(", "), "verdict"));
    into.appendChild(fig);
  });
}
$("move-form").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded("gallery-error", async () => {
    const chosen = [...document.querySelectorAll("#person-faces input:checked")].map((c) => Number(c.value));
    if (!chosen.length) throw new Error("Choose the faces to move first (tick them).");
    const name = $("move-name").value.trim();
    let to = name;
    for (const id of chosen) {
      const r = await (await api("/v1/photos/" + id, { method: "PATCH", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ identity: name }) })).json();
      to = r.identity;
    }
    $("gallery-status").textContent = "Moved " + chosen.length + " face" + (chosen.length === 1 ? "" : "s") + " of " + shownPerson + " to " + to + ".";
    $("move-form").reset();
    const stays = document.querySelectorAll("#person-faces input").length > chosen.length;
    await loadPeople();
    if (stays) await showPerson(shownPerson); else await showPerson(to);
  });
});
$("close-person").addEventListener("click", () => { $("person-view").hidden = true; shownPerson = null; });

// -- look-alikes (GET /v1/look-alikes): listed for a person to judge, merged only on request
async function checkLookAlikes() {
  await guarded("gallery-error", async () => {
    const found = await (await api("/v1/look-alikes")).json();
    const list = $("lookalikes");
    list.textContent = "";
    const n = found.pairs.length;
    $("lookalikes-status").textContent = n
      ? n + " pair" + (n === 1 ? "" : "s") + " of people to check, closest first."
      : "No look-alikes among " + found.people + " people.";
    for (const pair of found.pairs) {
      const li = el("li", undefined, "lookalike");
      li.appendChild(el("h4", pair.first + " ~ " + pair.second + " · closest photos " + pair.distance.toFixed(3) + " apart"));
      const faces = el("div", undefined, "faces");
      const closest = pair.bridges[0];
      for (const [id, who] of [[closest.photo_a, pair.first], [closest.photo_b, pair.second]]) {
        const face = img("Photo " + id + " of " + who);
        faces.appendChild(face);
        faceUrl(id).then((url) => { face.src = url; }).catch(() => { face.alt += " (could not be shown)"; });
      }
      li.appendChild(faces);
      const merge = el("button", "Merge " + pair.first + " into " + pair.second);
      merge.type = "button";
      merge.addEventListener("click", () => mergeInto(pair.first, pair.second));
      li.appendChild(merge);
      list.appendChild(li);
    }
    // unnamed groups (People to name) as near a person they are not suggested as
    for (const g of found.groups || []) {
      const li = el("li", undefined, "lookalike group");
      li.appendChild(el("h4", "Group " + g.cluster + " of run " + g.run + " (" + (g.suggestion ? "probably " + g.suggestion : "not in the gallery") +
        ") ~ " + g.person + " · " + g.distance.toFixed(3) + " apart"));
      const faces = el("div", undefined, "faces");
      const person = img("Photo " + g.photo_id + " of " + g.person);
      faces.append(thumbnail(g.run, g.cluster, g.face, g.photo), person);
      faceUrl(g.photo_id).then((url) => { person.src = url; }).catch(() => { person.alt += " (could not be shown)"; });
      li.appendChild(faces);
      li.appendChild(el("p", "Look before naming this group: it may be " + g.person + ", or someone who resembles them.", "small"));
      list.appendChild(li);
    }
    if ((found.groups || []).length) {
      $("lookalikes-status").textContent += " " + found.groups.length + " group" + (found.groups.length === 1 ? "" : "s") +
        " to name with care.";
    }
  });
}
async function mergeInto(from, into) {
  if (!confirm("Merge " + from + " into " + into + "? Every photo of " + from + " will carry the name " + into + ".")) return;
  await guarded("gallery-error", async () => {
    await api("/v1/identities/" + encodeURIComponent(from), {
      method: "PATCH", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: into, merge: true }) });
    $("gallery-status").textContent = "Merged " + from + " into " + into + ".";
    await loadPeople();
    await checkLookAlikes();
  });
}
$("check-lookalikes").addEventListener("click", checkLookAlikes);
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadPeople(); });
$("next").addEventListener("click", () => { offset += PAGE; loadPeople(); });
async function removeIdentity(name) {
  if (!confirm("Remove " + name + " and every photo of them from the gallery?")) return;
  await guarded("gallery-error", async () => {
    const r = await (await api("/v1/identities/" + encodeURIComponent(name), { method: "DELETE" })).json();
    $("gallery-status").textContent = "Removed " + name + " (" + r.removed_photos + " photos).";
    await loadPeople();
  });
}
async function removePhoto(id) {
  if (!confirm("Remove photo " + id + " from the gallery?")) return;
  await guarded("gallery-error", async () => {
    await api("/v1/photos/" + id, { method: "DELETE" });
    $("gallery-status").textContent = "Removed photo " + id + ".";
    await loadPeople();
  });
}
// Enrolling: photos go in one request; a photo with several faces is refused by the
// server with its boxes, and the user picks the face (it is then sent on its own).
async function enrollPhotos(name, files, face) {
  const form = new FormData();
  for (const f of files) form.append("photos", f);
  if (face !== undefined) form.append("face", String(face));
  return (await api("/v1/identities/" + encodeURIComponent(name) + "/photos", { method: "POST", body: form })).json();
}
function pickFace(file, faces, name) {
  return new Promise((resolve) => {
    const box = $("face-picker");
    box.textContent = "";
    box.appendChild(el("p", (file.name || "This photo") + " shows " + faces.length + " faces. Which one is " + name + "?", "verdict"));
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.addEventListener("load", () => {
      const { fig } = facesOnPhoto(file, image.naturalWidth, image.naturalHeight,
        faces.map((b) => ({ box: b })), (_, i) => "face " + (i + 1), (i) => { box.hidden = true; resolve(i); });
      box.insertBefore(fig, cancel);
      URL.revokeObjectURL(url);
    });
    image.src = url;
    const cancel = el("button", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => { box.hidden = true; resolve(null); });
    box.appendChild(cancel);
    box.hidden = false;
  });
}
$("enroll-form").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded("gallery-error", async () => {
    const name = $("enroll-name").value.trim();
    let rest = [...$("enroll-files").files];
    let added = 0, identity = name;
    while (rest.length) {
      try {
        const r = await enrollPhotos(name, rest);
        added += r.photos.filter((p) => p.created).length; identity = r.identity;
        rest = [];
      } catch (err) {
        if (!err.body || err.body.code !== "several_faces") throw err;
        const file = rest[err.body.photo];
        const face = await pickFace(file, err.body.faces, name);
        if (face === null) { $("gallery-status").textContent = "Enrollment cancelled."; return; }
        const r = await enrollPhotos(name, [file], face);
        added += r.photos.filter((p) => p.created).length; identity = r.identity;
        rest = rest.filter((f) => f !== file);
      }
    }
    $("gallery-status").textContent = "Enrolled " + added + " new photo" + (added === 1 ? "" : "s") + " of " + identity + ".";
    $("enroll-form").reset();
    await loadPeople();
  });
});

// -- reports --------------------------------------------------------------------------
const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(4));
async function openReport(run, format) {
  await guarded("reports-error", async () => {
    const blob = await (await api("/v1/evaluations/" + run + "/report?format=" + format)).blob();
    const url = URL.createObjectURL(blob);
    if (format === "html") { window.open(url, "_blank", "noopener"); return; }
    const a = el("a"); a.href = url; a.download = "run" + run + "." + format;
    document.body.appendChild(a); a.click(); a.remove();
  });
}
async function loadRuns() {
  await guarded("reports-error", async () => {
    const runs = await (await api("/v1/evaluations")).json();
    const body = $("runs").querySelector("tbody");
    body.textContent = "";
    for (const r of runs) {
      const tr = el("tr");
      const labels = [...$("runs").querySelectorAll("thead th")].map((th) => th.textContent);
      [r.run, r.model, r.split, r.pairs, fmt(r.accuracy), fmt(r.roc_auc), fmt(r.eer), fmt(r.threshold)].forEach((v, i) => {
        const cell = el("td", String(v));
        cell.dataset.label = labels[i];  // shown beside the value where the table is a list of cards
        tr.appendChild(cell);
      });
      const td = el("td");
      td.dataset.label = labels[8];
      for (const format of ["html", "csv", "json"]) {
        const b = el("button", format.toUpperCase());
        b.type = "button"; b.setAttribute("aria-label", format.toUpperCase() + " report of run " + r.run);
        b.addEventListener("click", () => openReport(r.run, format));
        td.appendChild(b);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    }
    if (!runs.length) $("reports-error").textContent = "No evaluation yet: run `verifier evaluate`.";
  });
}

showKeyState();
if (key) loadModel();

// -- people to name: cluster runs ---------------------------------------------------------
// Unlabeled photos are uploaded as one cluster run, followed until done; each group
// is a row of face thumbnails with the gallery person it probably is and a name field.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function followRun(run) {
  const progress = $("cluster-progress");
  progress.hidden = false;
  for (;;) {
    const body = await (await api("/v1/clusters/" + run)).json();
    progress.max = Math.max(1, body.progress.total);
    progress.value = body.progress.done;
    $("cluster-status").textContent = "Run " + run + ": " + body.status + ", " + body.progress.done +
      " of " + body.progress.total + " photos";
    if (body.status !== "running") { progress.hidden = true; return body; }
    await sleep(500);
  }
}

function thumbnail(run, cluster, index, photo) {
  // placed at once, in face order; the picture arrives when fetched (it needs the key)
  const image = img("a face from " + photo, "thumb");
  api("/v1/clusters/" + run + "/" + cluster + "/faces/" + index)
    .then((response) => response.blob())
    .then((blob) => { image.src = URL.createObjectURL(blob); })
    .catch(() => { image.alt = photo + " (unavailable)"; });
  return image;
}

function showRun(body) {
  const list = $("clusters");
  list.replaceChildren();
  if (body.status === "failed") { $("people-error").textContent = "The run failed: " + body.error; return; }
  const skipped = Object.keys(body.skipped || {}).length;
  const grew = body.counts && body.counts.continued;
  $("cluster-status").textContent = "Run " + body.run + ": " + body.clusters.length + " people found, " +
    body.unclustered_faces.length + " faces on their own" + (skipped ? ", " + skipped + " photos unusable" : "") +
    (grew ? "; " + body.counts.new_faces + " new faces joined the groups of run " + body.counts.continued : "");
  body.clusters.forEach((group) => {
    const item = el("li", undefined, "cluster");
    item.dataset.cluster = group.cluster;
    const hint = group.named ? "named " + group.named
      : group.suggestion ? "probably " + group.suggestion.identity + " (distance " + group.suggestion.distance.toFixed(3) + ")"
      : "not in the gallery";
    const fresh = grew && group.new_faces ? " (" + group.new_faces + " new)" : "";
    item.appendChild(el("h3", "Group " + group.cluster + ": " + group.size + " faces" + fresh + ", " + hint));
    const faces = el("div", undefined, "thumbs");
    item.appendChild(faces);
    group.faces.slice(0, 24).forEach((face, i) => faces.appendChild(thumbnail(body.run, group.cluster, i, face.photo)));
    const form = el("form", undefined, "name-form");
    const id = "name-" + body.run + "-" + group.cluster;
    const label = el("label", "Name"); label.htmlFor = id;
    const input = el("input"); input.id = id; input.required = true; input.maxLength = 255;
    input.value = group.named || (group.suggestion ? group.suggestion.identity : "");
    const merge = el("input"); merge.type = "checkbox"; merge.id = id + "-merge";
    merge.checked = Boolean(group.suggestion) || Boolean(group.named);  // new faces of a named person join them
    const mergeLabel = el("label", "add to this existing person", "inline"); mergeLabel.htmlFor = merge.id;
    const button = el("button", "Name this person"); button.type = "submit";
    const said = el("span", undefined, "said"); said.setAttribute("role", "status");
    form.append(label, input, merge, mergeLabel, button, said);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      guarded("people-error", async () => {
        const named = await (await api("/v1/clusters/" + body.run + "/" + group.cluster + "/name", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: input.value.trim(), merge: merge.checked }),
        })).json();
        said.textContent = named.enrolled + " photos enrolled as " + named.identity +
          (named.already ? ", " + named.already + " already there" : "") +
          (Object.keys(named.skipped).length ? ", " + Object.keys(named.skipped).length + " skipped" : "");
      });
    });
    item.appendChild(form);
    list.appendChild(item);
  });
}

async function loadLatestRun() {
  await guarded("people-error", async () => {
    const runs = (await (await api("/v1/clusters")).json()).runs;
    if (!runs.length) { $("cluster-status").textContent = "No cluster run yet: upload photos above."; return; }
    showRun(await followRun(runs[0].run));
  });
}

$("cluster-form").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded("people-error", async () => {
    const form = new FormData();
    for (const file of $("cluster-files").files) form.append("photos", file);
    $("clusters").replaceChildren();
    $("cluster-status").textContent = "Uploading...";
    const started = await (await api("/v1/clusters", { method: "POST", body: form })).json();
    showRun(await followRun(started.run));
  });
});
