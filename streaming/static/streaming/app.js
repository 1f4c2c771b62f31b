// The creator's page: sign in, write a script live, keep it through drops and reloads, open saved ones.
import { StreamClient } from "./client.js";
import { ScriptFollower } from "./follow.js";
import { SavedScripts } from "./saved.js";

const AUTH_KEY = "creatornexus.auth"; // {access, refresh, username}; sessionStorage only, never the URL
const VIEW_KEY = "creatornexus.view"; // the script on screen, so a reload shows it and resumes after it

const PLATFORMS = {
  tiktok: { label: "TikTok", max: 600 },
  youtube_shorts: { label: "YouTube Shorts", max: 180 },
  instagram_reels: { label: "Instagram Reels", max: 180 },
  youtube: { label: "YouTube", max: 1200 },
  linkedin: { label: "LinkedIn", max: 600 },
};

// One human sentence for every protocol.ErrorCode (tests/test_page.py checks none is missing).
const ERROR_MESSAGES = {
  bad_request: "Something in the request wasn't accepted.",
  unknown_type: "This page is out of date. Reload it to get the latest version.",
  not_found: "That script session no longer exists.",
  payload_too_large: "That request is too long. Shorten the topic, tone or audience.",
  rate_limited: "You're going a little fast. Wait a moment, then try again.",
  too_many_streams: "You already have several scripts being written. Wait for one to finish, or cancel it.",
  internal_error: "Something went wrong on our side. Please try again.",
  resume_expired: "This script finished a while ago, so it can't be replayed live. Open it from Saved scripts.",
  ai_unavailable: "The AI writer is unavailable right now. Please try again in a minute.",
  ai_rate_limited: "The AI writer is busy right now. Please try again in a minute.",
  ai_misconfigured: "The AI writer isn't set up correctly on the server. Please contact support.",
  ai_timeout: "The AI writer took too long to answer. Try again, or ask for a shorter script.",
  ai_refused: "The AI writer declined this topic. Try rephrasing it.",
  worker_lost: "The server writing this script stopped unexpectedly. The words so far are kept; please write it again.",
  shutting_down: "The server is restarting. Please write the script again in a moment.",
  quota_exceeded: "You've used today's word budget.",
};

const $ = (id) => document.getElementById(id);
const el = {};
for (const id of [
  "connection", "connection-text", "who", "sign-out", "signin-view", "signin-form", "signin-error", "signin-submit",
  "username", "password", "app-view", "generate-form", "topic", "platform", "duration", "duration-hint", "tone",
  "audience", "form-error", "generate", "saved-list", "saved-empty", "saved-refresh", "output", "output-title",
  "output-meta", "output-status", "progress", "progress-fill", "word-count", "elapsed", "progress-text",
  "output-alert", "script-empty", "script", "cancel", "copy", "download", "action-note", "usage", "script-box",
  "jump", "rewrite", "saved-note", "saved-count", "saved-more",
]) el[id] = $(id);

let auth = readJSON(AUTH_KEY);
let refreshing = null;
let view = null; // {session_id?, topic, platform, duration, status, text, words, progress, startedAt, elapsedMs}
let ticker = null;
let client = null;
const follower = new ScriptFollower(el["script-box"], el.jump);
const saved = new SavedScripts({
  api,
  el: { list: el["saved-list"], empty: el["saved-empty"], count: el["saved-count"], more: el["saved-more"] },
  platformLabel: (platform) => PLATFORMS[platform]?.label ?? platform,
  reasonOf: (script) => firstSentence(ERROR_MESSAGES[script.error_code] ?? script.error_message ?? ""),
  onOpen: (id) => openSaved(id),
});

// ------------------------------------------------------------------ small helpers

function readJSON(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function writeJSON(key, value) {
  if (value === null) sessionStorage.removeItem(key);
  else sessionStorage.setItem(key, JSON.stringify(value));
}

function show(node, visible) {
  node.hidden = !visible;
}

function messageFor(code, serverMessage, resetsAt) {
  const human = ERROR_MESSAGES[code] ?? ERROR_MESSAGES.internal_error;
  if (code === "quota_exceeded" && resetsAt) return `${human} You can write again from ${localTime(resetsAt)}.`;
  // Validation messages name the field and its limits: worth showing as they are.
  return code === "bad_request" && serverMessage ? `${human} ${serverMessage}` : human;
}

function localTime(iso) {
  return new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

function firstSentence(text) {
  return text.split(/(?<=\.) /)[0];
}

/** Scroll the page to a card; its top stays clear of the sticky header (scroll-padding-top in app.css). */
function scrollToCard(node) {
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  node.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
}

function formatElapsed(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// ------------------------------------------------------------------ tokens

function tokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

/**
 * One refresh at a time; resolves to the new access token, or null once the session is over. The stream client
 * asks for it (getToken({fresh: true})) before its socket's token expires and sends it in-band, so the socket
 * never drops for it; the refresh token rotates, so the one answered replaces the one sent.
 */
function refreshAccess() {
  refreshing ??= (async () => {
    try {
      if (!auth) return null;
      const response = await fetch("/api/auth/token/refresh/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh: auth.refresh }),
      });
      if (response.status === 401 || response.status === 400) {
        signOut("Your session has ended. Please sign in again.");
        return null;
      }
      if (!response.ok) throw new Error(`refresh failed: ${response.status}`);
      const body = await response.json();
      auth = { ...auth, access: body.access, refresh: body.refresh ?? auth.refresh };
      writeJSON(AUTH_KEY, auth);
      return auth.access;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function getToken({ fresh }) {
  if (!auth) return null;
  const claims = tokenClaims(auth.access);
  const expired = claims?.exp && claims.exp * 1000 <= Date.now() + 1000;
  return fresh || expired ? refreshAccess() : auth.access;
}

/** GET an API path as the signed-in user; a 401 gets one refresh and one retry. */
async function api(path) {
  for (const retry of [false, true]) {
    const token = retry ? await refreshAccess() : await getToken({ fresh: false });
    if (!token) throw new Error("signed out");
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
    if (response.status === 401 && !retry) continue;
    if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
    return response.json();
  }
  throw new Error("unauthorized");
}

// ------------------------------------------------------------------ sign in / out

async function signIn(event) {
  event.preventDefault();
  const username = el.username.value.trim();
  const password = el.password.value;
  show(el["signin-error"], false);
  if (!username || !password) return signInError("Enter your username and password.");
  el["signin-submit"].disabled = true;
  el["signin-submit"].textContent = "Signing in…";
  try {
    const response = await fetch("/api/auth/token/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (response.status === 401 || response.status === 400) {
      return signInError("That username and password don't match. Check them and try again.");
    }
    if (!response.ok) return signInError("The server couldn't sign you in right now. Please try again.");
    const body = await response.json();
    auth = { access: body.access, refresh: body.refresh, username };
    writeJSON(AUTH_KEY, auth);
    el.password.value = "";
    startSession();
    el.topic.focus();
  } catch {
    signInError("Can't reach the server. Check your connection and try again.");
  } finally {
    el["signin-submit"].disabled = false;
    el["signin-submit"].textContent = "Sign in";
  }
}

function signInError(text) {
  el["signin-error"].textContent = text;
  show(el["signin-error"], true);
}

/** The user signs out here: this login ends on the server too (its sockets close everywhere), then the page. */
async function logOut() {
  const token = await getToken({ fresh: false }).catch(() => null);
  const refresh = auth?.refresh;
  signOut();
  if (!token || !refresh) return;
  fetch("/api/auth/logout/", {
    method: "POST",
    keepalive: true,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ refresh }),
  }).catch(() => {});
}

function signOut(reason) {
  client?.close();
  client = null;
  auth = null;
  stopTicker();
  saved.stop();
  for (const key of [AUTH_KEY, VIEW_KEY, "creatornexus.streams"]) sessionStorage.removeItem(key);
  view = null;
  setBadge("signed-out");
  document.body.dataset.view = "signin";
  show(el["app-view"], false);
  show(el["signin-view"], true);
  show(el.who, false);
  show(el["sign-out"], false);
  if (reason) signInError(reason);
  el.username.focus();
}

function startSession() {
  document.body.dataset.view = "app";
  show(el["signin-view"], false);
  show(el["app-view"], true);
  el.who.textContent = auth.username;
  show(el.who, true);
  show(el["sign-out"], true);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  client = new StreamClient({ url: `${scheme}://${location.host}/ws/stream/`, getToken });
  client.addEventListener("state", (e) => onState(e.detail));
  client.addEventListener("started", (e) => onStarted(e.detail));
  client.addEventListener("chunk", (e) => onChunk(e.detail));
  for (const type of ["completed", "failed", "cancelled"]) client.addEventListener(type, (e) => onEnd(type, e.detail));
  client.addEventListener("error", (e) => onError(e.detail));
  restoreView();
  client.connect();
  saved.reload();
  loadUsage();
}

// ------------------------------------------------------------------ connection badge

let badgeTimer = null;

function onState({ state, retryAt, reason }) {
  if (state === "signed-out") return signOut("Your session has ended. Please sign in again.");
  const back = state === "connected" && el.connection.dataset.state === "reconnecting";
  setBadge(state, retryAt, reason);
  updateControls();
  if (back && view?.status === "running") note("Picking up where you left off…");
}

function setBadge(state, retryAt, reason) {
  clearInterval(badgeTimer);
  el.connection.dataset.state = state;
  const text = el["connection-text"];
  if (state === "reconnecting" && retryAt) {
    const paint = () => {
      const seconds = Math.ceil((retryAt - Date.now()) / 1000);
      text.textContent = seconds > 0 ? `Reconnecting in ${seconds}s` : "Reconnecting…";
    };
    paint();
    badgeTimer = setInterval(paint, 250);
  } else {
    text.textContent = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      offline: reason === "forbidden" ? "Offline: access refused" : "Offline",
      "signed-out": "Signed out",
    }[state];
  }
}

// ------------------------------------------------------------------ the script on screen

function saveView() {
  writeJSON(VIEW_KEY, view);
}

function restoreView() {
  const kept = readJSON(VIEW_KEY);
  if (!kept) return renderView();
  view = kept;
  if (view.status === "starting") {
    view.status = "interrupted";
    alertOutput("The page was reloaded before this script started. Press Write it again.", "warn");
  }
  renderView();
  if (view.status === "running") {
    // The client forgot it (its end came as the page closed): ask again after the words kept here; the server
    // answers with the rest and the end, or refuses, and then onResumeRefused finds out what became of it.
    if (!client.streams.has(view.session_id)) client.resume(view.session_id, view.words);
    follower.toEnd();
    startTicker();
    note("Picking up where you left off…");
  }
}

function renderView() {
  const v = view;
  el.output.dataset.status = v?.status ?? "empty";
  el.script.textContent = v?.text ?? "";
  show(el["script-empty"], !v);
  el["output-title"].textContent = v ? v.topic : "Your script";
  el["output-meta"].textContent = v
    ? `${PLATFORMS[v.platform]?.label ?? v.platform} · ${v.duration} seconds${v.tone ? ` · ${v.tone}` : ""}`
    : "It will appear here, word by word.";
  const status = { running: "Writing", completed: "Done", failed: "Failed", cancelled: "Cancelled",
    interrupted: "Interrupted", starting: "Starting" }[v?.status];
  el["output-status"].textContent = status ?? "";
  el["output-status"].dataset.status = v?.status ?? "";
  show(el["output-status"], Boolean(status));
  renderNumbers();
  updateControls();
}

function renderNumbers() {
  const percent = Math.round((view?.progress ?? 0) * 100);
  el.progress.setAttribute("aria-valuenow", String(percent));
  el["progress-fill"].style.width = `${percent}%`;
  el["progress-text"].textContent = `${percent}%`;
  const words = view?.words ?? 0;
  el["word-count"].textContent = view?.estimated && view.status === "running" ? `${words} / ~${view.estimated}` : `${words}`;
  const elapsed = view?.elapsedMs ?? (view?.startedAt ? Date.now() - view.startedAt : 0);
  el.elapsed.textContent = formatElapsed(elapsed);
}

function updateControls() {
  const running = view?.status === "running" || view?.status === "starting";
  const connected = client?.state === "connected";
  el.generate.disabled = running || !connected;
  el.generate.textContent = running ? "Writing…" : connected ? "Write script" : "Waiting for connection…";
  show(el.cancel, view?.status === "running");
  el.cancel.disabled = !connected;
  show(el.rewrite, view?.status === "failed" || view?.status === "interrupted");
  el.rewrite.disabled = !connected;
  // Whatever has words can be taken away, however it ended; a script still being written first has to end.
  const hasText = !running && Boolean(view?.text);
  el.copy.disabled = !hasText;
  el.download.disabled = !hasText;
}

function startTicker() {
  stopTicker();
  ticker = setInterval(renderNumbers, 200);
}

function stopTicker() {
  clearInterval(ticker);
  ticker = null;
}

function alertOutput(text, tone = "error") {
  el["output-alert"].textContent = text ?? "";
  el["output-alert"].className = `alert alert-${tone}`;
  show(el["output-alert"], Boolean(text));
}

/** The note beside the actions: it stays until the next note replaces it (words arriving do not clear it). */
function note(text) {
  el["action-note"].textContent = text;
}

/** The note above Saved scripts, where the creator clicked. */
function savedNote(text) {
  el["saved-note"].textContent = text;
}

// ------------------------------------------------------------------ generating

async function generate(event) {
  event.preventDefault();
  show(el["form-error"], false);
  const request = readForm();
  if (typeof request === "string") {
    el["form-error"].textContent = request;
    return show(el["form-error"], true);
  }
  view = { ...request, status: "starting", text: "", words: 0, progress: 0, startedAt: Date.now() };
  alertOutput(null);
  note("");
  savedNote("");
  renderView();
  follower.toStart();
  if (matchMedia("(max-width: 820px)").matches) scrollToCard(el.output);
  try {
    await client.generate(request);
  } catch (error) {
    view = { ...view, status: "failed", elapsedMs: 0 };
    saveView();
    renderView();
    alertOutput(error.code === "offline" ? "The connection dropped before the script started. Try again once you're connected."
      : messageFor(error.code, error.message, error.resets_at));
    if (error.code === "quota_exceeded") loadUsage();
  }
}

function readForm() {
  const topic = el.topic.value.trim();
  const platform = el.platform.value;
  const duration = Number(el.duration.value);
  const max = PLATFORMS[platform].max;
  if (!topic) return "Add a topic for your script.";
  if (!Number.isInteger(duration) || duration < 5 || duration > max) {
    return `Length for ${PLATFORMS[platform].label} must be a whole number from 5 to ${max} seconds.`;
  }
  return { topic, platform, duration, tone: el.tone.value.trim(), audience: el.audience.value.trim() };
}

function onStarted(frame) {
  if (view?.status !== "starting") return;
  view = { ...view, session_id: frame.session_id, estimated: frame.estimated_words, status: "running",
    startedAt: Date.now() };
  saveView();
  renderView();
  startTicker();
}

function onChunk(frame) {
  if (view?.session_id !== frame.session_id) return;
  follower.append(() => el.script.append(frame.text));
  view.text += frame.text;
  view.words = frame.words;
  view.progress = Math.max(view.progress, frame.progress);
  saveView();
  renderNumbers();
}

function onEnd(type, frame) {
  if (view?.session_id !== frame.session_id) return;
  stopTicker();
  view.status = type;
  view.elapsedMs = frame.elapsed_ms ?? Date.now() - view.startedAt;
  if (type === "completed") {
    view.progress = 1;
    view.script_id = frame.script_id;
    view.words = frame.words;
  }
  saveView();
  renderView();
  if (type === "failed") alertOutput(messageFor(frame.error?.code, frame.error?.message));
  if (type === "cancelled") alertOutput("Stopped. The words written so far are kept: copy or download them.", "info");
  note(type === "completed" ? "Saved to your scripts." : "");
  savedNote("");
  saved.reload();
  loadUsage();
}

function onError(frame) {
  if (frame.session_id && frame.session_id === view?.session_id) onResumeRefused();
  else if (!frame.request_id) alertOutput(messageFor(frame.code, frame.message, frame.resets_at));
}

/**
 * The server cannot replay the stream on screen (resume_expired, not_found). Either it ended while this page was
 * away and its end is no longer kept for replay (the saved row has it all), or the process writing it was lost
 * with its words (a dev-server restart, a store that forgot it): then the words are only here, and the row says
 * running or worker_lost with fewer of them.
 */
async function onResumeRefused() {
  stopTicker();
  view.status = "interrupted";
  saveView();
  renderView();
  const sessionId = view.session_id;
  const row = await api(`/api/scripts/?session_id=${encodeURIComponent(sessionId)}`)
    .then((page) => page.results[0] ?? null, () => null);
  if (view?.session_id !== sessionId) return;
  if (endedWhileAway(row, view.words)) {
    return openSaved(row.id, "It ended while you were away; this is the saved script.");
  }
  alertOutput(interruptedMessage(view.words), "warn");
  note("");
  saved.reload();
}

/** The row has the whole script: it ended on its own (or its process died after the page's last word). */
function endedWhileAway(row, wordsHere) {
  if (!row || row.status === "running") return false;
  return row.error_code === "worker_lost" ? row.words > wordsHere : row.words >= wordsHere;
}

function interruptedMessage(words) {
  if (!words) return "The server restarted before this script got its first words. Press Write it again.";
  return `The server restarted while this script was being written, so it stopped after ${words} words. ` +
    "They are kept here: copy or download them, or press Write it again for a whole script.";
}

function cancel() {
  if (view?.session_id) client.cancel(view.session_id);
}

/** The same request again, from the form (filled from the script on screen). */
function rewrite() {
  el.topic.value = view.topic;
  el.platform.value = view.platform;
  syncDurationLimit();
  el.duration.value = String(view.duration);
  el.tone.value = view.tone ?? "";
  el.audience.value = view.audience ?? "";
  el["generate-form"].requestSubmit();
}

// ------------------------------------------------------------------ copy / download

async function copyScript() {
  try {
    await navigator.clipboard.writeText(view.text);
    note(`Copied ${view.words} words to the clipboard.`);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el.script);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    note("Selected: press Ctrl+C (⌘C) to copy.");
  }
}

function downloadScript() {
  const slug = view.topic.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "script";
  const url = URL.createObjectURL(new Blob([view.text], { type: "text/plain;charset=utf-8" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: `${slug}-${view.platform}.txt` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  note("Downloaded.");
}

// ------------------------------------------------------------------ usage

/** The small line under the form: today's words against the daily budget (GET /api/usage/). */
async function loadUsage() {
  let usage;
  try {
    usage = await api("/api/usage/");
  } catch {
    return;
  }
  const used = usage.words.used.toLocaleString();
  // Two parts that each keep to one line: a narrow screen breaks the line between them, not inside a time.
  const part = (text) => Object.assign(document.createElement("span"), { textContent: text });
  if (usage.words.limit) {
    const budget = part(`Today: ${used} of ${usage.words.limit.toLocaleString()} words`);
    el.usage.replaceChildren(budget, " · ", part(`resets ${localTime(usage.words.resets_at)}`));
  } else {
    el.usage.replaceChildren(part(`Today: ${used} words written`));
  }
  el.usage.dataset.spent = String(Boolean(usage.words.limit) && usage.words.used >= usage.words.limit);
  show(el.usage, true);
}

// ------------------------------------------------------------------ saved scripts

/** Show a saved script; a running one is followed live (replayed from its first word). */
async function openSaved(id, arrivedNote = "") {
  if (view?.status === "running" || view?.status === "starting") {
    return savedNote("Wait for the current script to finish, or cancel it.");
  }
  let script;
  try {
    script = await api(`/api/scripts/${id}/`);
  } catch {
    return savedNote("That script couldn't be opened. Try again.");
  }
  const running = script.status === "running";
  view = {
    session_id: script.session_id, script_id: script.id, topic: script.topic, platform: script.platform,
    duration: script.duration, tone: script.tone, audience: script.audience, status: script.status,
    text: running ? "" : script.script, words: running ? 0 : script.words, estimated: script.estimated_words,
    progress: script.status === "completed" ? 1 : 0,
    ...(running ? { startedAt: Date.parse(script.created_at) } : { elapsedMs: script.elapsed_ms ?? 0 }),
  };
  saveView();
  alertOutput(script.error_code ? messageFor(script.error_code, script.error_message) : null);
  note(arrivedNote);
  savedNote("");
  renderView();
  follower.toStart();
  if (running) {
    startTicker();
    client.resume(script.session_id, 0);
  }
  scrollToCard(el.output);
}

// ------------------------------------------------------------------ wiring

function syncDurationLimit() {
  const { max, label } = PLATFORMS[el.platform.value];
  el.duration.max = String(max);
  el["duration-hint"].textContent = `${label}: 5 to ${max} seconds`;
}

el["signin-form"].addEventListener("submit", signIn);
el["sign-out"].addEventListener("click", logOut);
el["generate-form"].addEventListener("submit", generate);
el.platform.addEventListener("change", syncDurationLimit);
el.cancel.addEventListener("click", cancel);
el.rewrite.addEventListener("click", rewrite);
el.copy.addEventListener("click", copyScript);
el.download.addEventListener("click", downloadScript);
el["saved-refresh"].addEventListener("click", () => saved.reload());
syncDurationLimit();

if (auth?.access && auth?.refresh) startSession();
else signOut();
