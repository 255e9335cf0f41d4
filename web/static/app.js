// The miniclaw WebChat. No framework and no build step: one module that
// talks to the gateway's WebSocket and /api, and markdown.js for replies.
//
// What is on screen is the session's history from GET /api/sessions/{id}
// (the truth, persisted), followed by a "tail": messages this tab sent that
// history does not show yet, and the reply streaming now. Each turn's start
// and end reloads history, and the tail items history now covers are dropped,
// so a reconnect, a reload mid-stream or a reply finished while offline shows
// every message exactly once. (One instant is left: a load answered between
// a reply's persist and its message_done shows the reply twice until the
// message_done, sent right after the persist, arrives and its load settles.)
import { render } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const input = $("input");

const keys = { token: "miniclaw.token", session: "miniclaw.session" };

// Error codes that end the session's running turn (the turn's own error
// event); the others concern only this connection.
const turnEnding = new Set(["provider_error", "aborted", "shutting_down", "internal"]);

const state = {
  token: localStorage.getItem(keys.token) || "",
  session: sessionFromHash(), // "" until connect picks one (openStart)
  // draft: the session is a new chat not stored yet. It has no socket (the
  // gateway stores the session a connection names); its first message
  // connects, and so stores it. connect ends it when the list has the ID.
  draft: true,
  first: "", // the first message of a new chat, sent once its socket is connected
  ws: null,
  gen: 0, // bumped by every connect and switch: events of older sockets are ignored
  retries: 0,
  timer: 0,
  historySeq: 0, // the last history load issued; older answers are dropped
  history: { messages: [], offset: 0, total: 0 },
  limit: 100,
  apiBusy: false, // the session had a turn running or queued at the last load
  joining: false, // connected, and no history has been shown since
  joinedMidTurn: false, // the next reply to stream began before this connection
  tail: [], // {kind:"user", node, content, after, answered} | {kind:"user", node, content, timestamp, answered} (another client's) | {kind:"live", node, segs, tools, done, doneSeq}
  usage: "", // the usage line of the session's last reply, shown below it until the next turn starts
  sessions: [], // GET /api/sessions, as last shown
  listed: new Set(), // their IDs
  listKey: "", // their JSON: the sidebar is redrawn only when it changes
  listSeq: 0, // the last list load issued
  listShown: 0, // the load state.sessions comes from; older answers are dropped
  polling: false,
  editing: "", // the session whose title is open for editing in the sidebar
  armed: "", // the session whose sidebar archive button asks for a second click
  armTimer: 0,
};

// --- HTTP -----------------------------------------------------------------

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the gateway's JSON API with the token. A 401 asks the user for
// a token and tries again, so every caller gets auth for free.
async function api(path, method = "GET", body) {
  for (;;) {
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    if (r.status === 401) {
      await askToken(!!state.token);
      continue;
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new HTTPError(r.status, data.error?.message || `${r.status} ${r.statusText}`);
    return data;
  }
}

let tokenWaiters = null;

// askToken shows the token dialog once, however many requests wait on it.
function askToken(rejected) {
  setStatus("auth", "token required");
  if (!tokenWaiters) {
    tokenWaiters = [];
    $("auth-msg").textContent = rejected
      ? "That token was not accepted. Enter the gateway's token (MINI_OPENCLAW_TOKEN)."
      : "This gateway needs its access token (MINI_OPENCLAW_TOKEN).";
    $("token").value = "";
    $("auth").showModal();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  localStorage.setItem(keys.token, state.token);
  $("auth").close();
  const waiters = tokenWaiters;
  tokenWaiters = null;
  waiters.forEach((resolve) => resolve());
});
// Esc must not dismiss the dialog: nothing works without the token.
$("auth").addEventListener("cancel", (e) => e.preventDefault());

// --- WebSocket ----------------------------------------------------------

// connect checks the token and loads the session list over HTTP (a browser
// cannot see why a WebSocket upgrade failed), then opens the socket.
async function connect() {
  const gen = ++state.gen;
  clearTimeout(state.timer);
  setStatus("connecting", "connecting…");
  try {
    await refreshSessions();
  } catch {
    if (gen === state.gen) retryLater(gen);
    return;
  }
  if (gen !== state.gen) return;
  if (!state.session) openStart();
  if (state.draft && state.listed.has(state.session)) state.draft = false;
  updateBusy();
  if (state.draft) {
    // The gateway answered the list: it is there, and the first message
    // will connect.
    state.retries = 0;
    setStatus("connected", "connected");
    showTitle("");
    renderLog();
    return;
  }
  const q = new URLSearchParams();
  if (state.session) q.set("sessionId", state.session);
  if (state.token) q.set("token", state.token);
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws?${q}`);
  state.ws = ws;
  ws.onmessage = (e) => {
    if (gen === state.gen) onEvent(JSON.parse(e.data));
  };
  ws.onclose = () => {
    if (gen !== state.gen) return;
    state.ws = null;
    for (const item of state.tail) if (item.kind === "live" && !item.done) item.node.classList.add("stale");
    retryLater(gen);
  };
}

// retryLater reconnects with exponential backoff and jitter, from 0.5 s up
// to 10 s, so a restarting gateway is not hammered by every open tab.
function retryLater(gen) {
  const delay = Math.min(10000, 500 * 2 ** state.retries++) * (0.5 + Math.random() / 2);
  setStatus("offline", `offline — retrying in ${Math.ceil(delay / 1000)} s`);
  state.timer = setTimeout(() => {
    if (gen === state.gen) connect();
  }, delay);
}

function onEvent(ev) {
  if (ev.sessionId && ev.sessionId !== state.session && ev.type !== "connected") return;
  switch (ev.type) {
    case "connected":
      state.retries = 0;
      setSession(ev.sessionId, false);
      setStatus("connected", "connected");
      // What streamed on a lost connection is superseded by history plus
      // what this connection streams next.
      for (const item of state.tail) if (item.kind === "live" && !item.done) finishLive(item);
      state.joining = true;
      loadHistory();
      refreshSessions().catch(() => {});
      if (state.first) {
        state.ws.send(JSON.stringify({ type: "message", sessionId: state.session, content: state.first }));
        state.first = "";
      }
      break;
    case "chunk":
      appendText(liveTurn(), ev.content);
      break;
    case "tool_start":
      toolStart(liveTurn(), ev);
      break;
    case "tool_progress":
      toolProgress(liveTurn(), ev);
      break;
    case "tool_done":
      toolDone(liveTurn(), ev);
      break;
    case "user_message":
      othersMessage(ev);
      break;
    case "message_done":
      state.usage = usageLine(ev.usage, ev.context);
      endTurn();
      break;
    case "compaction":
      // A line until history holds the summary record it announces.
      addTail({ kind: "compaction", covers: ev.coveredMessages, node: compactionNode(ev) });
      break;
    case "resync":
      // Events relayed from another gateway may have been lost: what
      // streamed is superseded by history, as after a reconnect.
      for (const item of state.tail) if (item.kind === "live" && !item.done) finishLive(item);
      loadHistory();
      break;
    case "status": // another process on the data dir runs a turn of this session
      if (ev.state === "waiting") toast(ev.message);
      break;
    case "error": {
      // shutting_down either ends the running turn or refuses a message just
      // sent; without a reply streaming it can only be the latter.
      const streaming = state.tail.some((i) => i.kind === "live" && !i.done);
      if (ev.code === "queue_full" || (ev.code === "shutting_down" && !streaming)) dropNewestPending();
      if (ev.sessionId && turnEnding.has(ev.code)) endTurn();
      if (ev.code !== "aborted") toast(ev.message); // an abort shows as a badge on the reply
      break;
    }
  }
}

function send() {
  const text = input.value.trim();
  if (!text) return;
  if (state.draft) {
    if (text === "/compact") {
      toast("Nothing to compact: this chat has no messages yet.");
      return;
    }
    // The first message stores the chat: it goes out once the socket that
    // names the new session (and so creates it) is connected.
    state.draft = false;
    state.first = text;
    connect();
  } else if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    toast("Not connected: the message was not sent. It is still in the box.");
    return;
  } else if (text === "/compact") {
    // Summarise the older messages now; the compaction event (or an error) answers.
    state.ws.send(JSON.stringify({ type: "compact", sessionId: state.session }));
    input.value = "";
    autosize();
    return;
  } else {
    state.ws.send(JSON.stringify({ type: "message", sessionId: state.session, content: text }));
  }
  input.value = "";
  autosize();
  const node = messageNode({ role: "user", content: text });
  node.classList.add("pending");
  addTail({ kind: "user", node, content: text, after: state.history.total, answered: false });
  updateBusy();
}

function abort() {
  if (state.ws?.readyState === WebSocket.OPEN && isBusy()) {
    state.ws.send(JSON.stringify({ type: "abort", sessionId: state.session }));
  }
}

// --- the streaming turn -------------------------------------------------

// liveTurn returns the reply being streamed, starting one on a turn's first
// event. The start of a turn reloads history, which by then holds the turn's
// user message (persisted before the model is called), also when another
// tab sent it.
function liveTurn() {
  let live = state.tail.find((i) => i.kind === "live" && !i.done);
  if (live) return live;
  const node = document.createElement("div");
  node.className = "msg assistant live";
  live = { kind: "live", node, segs: [], tools: new Map(), done: false, doneSeq: 0 };
  state.usage = "";
  log.querySelector(":scope > .usage")?.remove();
  if (state.joinedMidTurn) node.classList.add("joined");
  state.joinedMidTurn = false;
  // The reply goes after the first message of ours it can answer; messages
  // sent after it wait below.
  const asked = state.tail.find((i) => i.kind === "user" && !i.answered);
  if (asked) asked.answered = true;
  insertTail(live, asked ? state.tail.indexOf(asked) + 1 : state.tail.length);
  loadHistory();
  refreshSessions().catch(() => {});
  updateBusy();
  return live;
}

function appendText(live, text) {
  let seg = live.segs.at(-1);
  if (!seg || seg.tool) {
    seg = { text: "", node: document.createElement("div"), timer: 0 };
    seg.node.className = "md";
    live.segs.push(seg);
    live.node.append(seg.node);
  }
  seg.text += text;
  // Rendering is throttled: a long reply re-rendered on every small chunk
  // would cost quadratic time.
  if (!seg.timer) {
    paintSeg(seg);
    seg.timer = setTimeout(() => {
      seg.timer = 0;
      paintSeg(seg);
    }, 50);
  }
}

function paintSeg(seg) {
  keepScrolled(() => seg.node.replaceChildren(render(seg.text)));
}

function toolStart(live, ev) {
  const card = toolCard({ id: ev.toolCallId, name: ev.toolName, input: ev.input });
  live.segs.push({ tool: true });
  live.tools.set(ev.toolCallId || ev.toolName, card);
  keepScrolled(() => live.node.append(card));
}

// cardOf is the card of the call an event names, made when the call started
// before this connection joined.
function cardOf(live, ev) {
  const key = ev.toolCallId || ev.toolName;
  let card = live.tools.get(key);
  if (!card) {
    card = toolCard({ id: ev.toolCallId, name: ev.toolName });
    live.tools.set(key, card);
    live.segs.push({ tool: true });
    live.node.append(card);
  }
  return card;
}

// toolProgress shows how far a running call got on its line ("3/10
// Downloading"); the result replaces it.
function toolProgress(live, ev) {
  const card = cardOf(live, ev);
  if (!card.classList.contains("running")) return;
  let p = card.querySelector(".tool-progress");
  if (!p) {
    p = document.createElement("span");
    p.className = "tool-progress";
    card.querySelector("summary").append(p);
  }
  const count = ev.total ? `${ev.progress}/${ev.total}` : String(ev.progress);
  p.textContent = ev.message ? `${count} ${ev.message}` : count;
}

function toolDone(live, ev) {
  fillTool(cardOf(live, ev), ev.output, ev.isError);
}

// othersMessage shows a message another client (another tab, miniclaw
// chat, /v1/chat/completions) sent, when its turn starts: the gateway sends
// user_message to every connection but the sender's, which shows its own
// copy from the moment it sent it. It goes before this tab's own messages
// still waiting (they run after it), and stays until history has it (the
// same text and timestamp).
function othersMessage(ev) {
  const node = messageNode({ role: "user", content: ev.content, timestamp: ev.timestamp });
  const waiting = state.tail.findIndex((i) => i.kind === "user" && !i.answered);
  const item = { kind: "user", node, content: ev.content, timestamp: ev.timestamp, answered: false };
  insertTail(item, waiting < 0 ? state.tail.length : waiting);
  updateBusy();
}

function finishLive(live) {
  for (const seg of live.segs) {
    if (seg.timer) {
      clearTimeout(seg.timer);
      seg.timer = 0;
      paintSeg(seg);
    }
  }
  live.done = true;
  live.doneSeq = state.historySeq + 1; // the next load covers it
  live.node.classList.remove("live");
}

// endTurn: the session's turn ended (message_done or its error). The reply
// is on disk by now, so history shows it; the streamed copy stays on screen
// until that history arrives.
function endTurn() {
  const live = state.tail.find((i) => i.kind === "live" && !i.done);
  if (live) finishLive(live);
  state.joinedMidTurn = false;
  loadHistory();
  refreshSessions().catch(() => {});
}

// usageLine is what a reply's message_done says of its tokens: how full the
// context window is when the gateway says, else the tokens the turn read and
// wrote, and the share of its input a prompt cache served when the provider
// reports cache use; only what is known. The same line as miniclaw chat's
// (internal/chatclient/render.go usageLine).
function usageLine(u, ctx) {
  const parts = [];
  const prompt = u ? (u.inputTokens || 0) + (u.cacheReadTokens || 0) + (u.cacheWriteTokens || 0) : 0;
  if (ctx && ctx.window > 0) parts.push(`${tokenCount(ctx.tokens)} / ${tokenCount(ctx.window)} tokens`);
  else if (u) parts.push(`${tokenCount(prompt)} tokens in`, `${tokenCount(u.outputTokens || 0)} out`);
  if (prompt > 0 && (u.cacheReadTokens || 0) + (u.cacheWriteTokens || 0) > 0) {
    parts.push(`${Math.floor(((u.cacheReadTokens || 0) * 100) / prompt)}% cached`);
  }
  return parts.join(" · ");
}

// tokenCount is n as people say it: 950, 1.5k, 42k, 1.2M (halves round up).
function tokenCount(n) {
  const tenths = (unit) => {
    const t = Math.floor((n + unit / 20) / (unit / 10));
    return t % 10 === 0 ? String(t / 10) : `${Math.floor(t / 10)}.${t % 10}`;
  };
  if (n < 1000) return String(n);
  if (n < 9950) return tenths(1000) + "k";
  if (n < 999500) return Math.floor((n + 500) / 1000) + "k";
  return tenths(1000000) + "M";
}

function dropNewestPending() {
  const item = state.tail.findLast((i) => i.kind === "user" && !i.timestamp);
  if (!item) return;
  state.tail.splice(state.tail.indexOf(item), 1);
  item.node.remove();
  if (!input.value) input.value = item.content;
  updateBusy();
}

// --- history ------------------------------------------------------------

async function loadHistory() {
  const id = state.session;
  const seq = ++state.historySeq;
  let page;
  try {
    page = await api(`/api/sessions/${encodeURIComponent(id)}?limit=${state.limit}`);
  } catch (e) {
    if (id === state.session && !(e instanceof HTTPError && e.status === 404)) toast("Could not load the history: " + e.message);
    return;
  }
  if (seq !== state.historySeq || id !== state.session) return; // a newer load is on its way
  state.history = { messages: page.messages || [], offset: page.offset, total: page.total };
  state.apiBusy = page.session.busy;
  if (state.joining) {
    // A turn already running when this connection came (and not one this
    // tab just asked for) streams only its rest: the reply is marked as
    // joined midway until history has it all.
    state.joining = false;
    const midTurn = state.apiBusy && !state.tail.some((i) => i.kind === "user");
    const live = state.tail.find((i) => i.kind === "live" && !i.done);
    if (live) live.node.classList.toggle("joined", midTurn);
    else state.joinedMidTurn = midTurn;
  }
  showTitle(page.session.title);
  state.tail = state.tail.filter((i) => !(i.kind === "live" && i.done && i.doneSeq <= seq));
  // A message of ours that history shows now is dropped from the tail: the
  // first user message with its text at or after the place it was sent.
  // Messages are persisted in the order sent, so the ones sent later can
  // only be further down (the same text twice is two messages).
  const summarised = new Set(state.history.messages.filter((m) => m.role === "summary").map((m) => m.covers));
  state.tail = state.tail.filter((item) => item.kind !== "compaction" || !summarised.has(item.covers));
  let floor = 0;
  state.tail = state.tail.filter((item) => {
    if (item.kind !== "user") return true;
    if (item.timestamp) {
      // Another client's: history has its exact copy.
      return !state.history.messages.some((m) => m.role === "user" && m.timestamp === item.timestamp && m.content === item.content);
    }
    item.after = Math.max(item.after, floor);
    const { messages, offset } = state.history;
    const i = messages.findIndex((m, j) => offset + j >= item.after && m.role === "user" && m.content === item.content);
    if (i < 0) return true;
    floor = offset + i + 1;
    return false;
  });
  renderLog();
  updateBusy();
}

function renderLog() {
  // Re-rendering must not close a tool card the user opened.
  const open = new Set([...log.querySelectorAll("details.tool[open]")].map((d) => d.dataset.id));
  const nodes = [];
  if (state.history.offset > 0) {
    const more = document.createElement("button");
    more.type = "button";
    more.className = "more";
    more.textContent = `Show earlier messages (${state.history.offset} more)`;
    more.disabled = state.limit >= 1000;
    more.onclick = () => {
      state.limit = Math.min(1000, state.limit + 100);
      loadHistory();
    };
    nodes.push(more);
  }
  for (const m of state.history.messages) nodes.push(messageNode(m));
  for (const item of state.tail) nodes.push(item.node);
  if (state.usage) {
    const u = document.createElement("div");
    u.className = "usage";
    u.textContent = state.usage;
    nodes.push(u);
  }
  if (nodes.length === 0) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No messages yet. Type below and press Enter.";
    nodes.push(empty);
  }
  const atBottom = nearBottom();
  log.replaceChildren(...nodes);
  for (const d of log.querySelectorAll("details.tool")) if (open.has(d.dataset.id)) d.open = true;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// compactionNode is the muted line that says older messages were
// summarised: from a compaction event (with its token figures) or a
// summary record in history (with the summary, folded).
function compactionNode({ coveredMessages, tokensBefore, tokensAfter, summary }) {
  const node = document.createElement("div");
  node.className = "msg system compaction";
  let text = `Compacted: ${coveredMessages} earlier message${coveredMessages === 1 ? "" : "s"} summarised`;
  if (tokensBefore) text += ` (${tokensBefore} → ${tokensAfter} tokens)`;
  if (summary === undefined) {
    node.textContent = text;
    return node;
  }
  const d = document.createElement("details");
  const s = document.createElement("summary");
  s.textContent = text;
  d.append(s, pre("summary-text", summary));
  node.append(d);
  return node;
}

function messageNode(m) {
  if (m.role === "summary") return compactionNode({ coveredMessages: m.covers, summary: m.content });
  const node = document.createElement("div");
  node.className = "msg " + (m.role === "user" || m.role === "assistant" ? m.role : "system");
  if (m.role === "assistant") {
    if (m.content) {
      const md = document.createElement("div");
      md.className = "md";
      md.append(render(m.content));
      node.append(md);
    }
    for (const c of m.toolCalls || []) {
      const card = toolCard(c);
      fillTool(card, c.output, c.isError);
      node.append(card);
    }
    if (m.status) {
      const note = document.createElement("div");
      note.className = "status-note " + m.status;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = m.status;
      note.append(badge, " " + (m.error || ""));
      node.append(note);
    }
  } else {
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = m.content;
    node.append(body);
  }
  if (m.timestamp) node.title = new Date(m.timestamp).toLocaleString();
  return node;
}

// toolCard is a collapsed card for one tool call: name and a one-line input
// in the summary, pretty input and the output inside.
function toolCard({ id, name, input }) {
  const d = document.createElement("details");
  d.className = "tool running";
  if (id) d.dataset.id = id;
  const s = document.createElement("summary");
  const icon = document.createElement("span");
  icon.className = "tool-state";
  const n = document.createElement("span");
  n.className = "tool-name";
  n.textContent = name;
  const brief = document.createElement("code");
  brief.className = "tool-brief";
  const oneLine = input === undefined ? "" : JSON.stringify(input);
  brief.textContent = oneLine.length > 80 ? oneLine.slice(0, 79) + "…" : oneLine;
  s.append(icon, n, brief);
  const body = document.createElement("div");
  body.className = "tool-body";
  body.append(label("Input"), pre("tool-input", input === undefined ? "" : JSON.stringify(input, null, 2)), label("Output"), pre("tool-output", "running…"));
  d.append(s, body);
  return d;
}

function fillTool(card, output, isError) {
  card.classList.remove("running");
  card.classList.add(isError ? "error" : "ok");
  card.querySelector(".tool-output").textContent = output || "(no output)";
}

function label(text) {
  const l = document.createElement("div");
  l.className = "tool-label";
  l.textContent = text;
  return l;
}

function pre(cls, text) {
  const p = document.createElement("pre");
  p.className = cls;
  p.textContent = text;
  return p;
}

function addTail(item) {
  insertTail(item, state.tail.length);
}

function insertTail(item, at) {
  const next = state.tail[at];
  state.tail.splice(at, 0, item);
  log.querySelector(":scope > .empty")?.remove();
  keepScrolled(() => log.insertBefore(item.node, next ? next.node : null));
}

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 60;
}

// keepScrolled runs f and keeps the log at the bottom if it was there, so
// reading older messages is not interrupted by the stream.
function keepScrolled(f) {
  const atBottom = nearBottom();
  f();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// --- sessions -----------------------------------------------------------

// The sidebar is GET /api/sessions, loaded on connect and at each turn's
// start and end, and polled every 2 s while the page is visible, so chats
// archived, forked or renamed beside the page (the CLI, another tab) show
// up or drop by themselves. It is redrawn only when the list changed, and
// never under a title being edited; the search box, scroll and focus stay.

const pollEvery = 2000;

async function refreshSessions() {
  const seq = ++state.listSeq;
  const data = await api("/api/sessions");
  if (seq < state.listShown) return; // a newer list is shown already
  state.listShown = seq;
  const was = state.listed;
  state.sessions = data.sessions || [];
  state.listed = new Set(state.sessions.map((m) => m.sessionId));
  const key = JSON.stringify(state.sessions);
  if (key !== state.listKey) {
    state.listKey = key;
    renderSessions();
  }
  if (!state.draft && was.has(state.session) && !state.listed.has(state.session)) {
    toast("This chat was archived elsewhere; its files are in sessions/archive/.");
    leave(state.session);
  }
}

// poll refreshes the list; a new chat whose ID another tab has stored
// meanwhile becomes that session. Without a socket (a new chat) the status
// says whether the gateway answered.
async function poll() {
  if (state.polling || document.visibilityState !== "visible") return;
  state.polling = true;
  try {
    await refreshSessions();
    if (state.draft) setStatus("connected", "connected");
  } catch {
    if (state.draft) setStatus("offline", "offline");
  } finally {
    state.polling = false;
  }
  if (state.draft && state.listed.has(state.session)) {
    state.draft = false;
    connect();
  }
}

function titleOf(m) {
  return m.title || "New chat";
}

// renderSessions draws the sidebar: the sessions whose title holds the
// search text, ignoring case. Titles are text (textContent), never HTML.
function renderSessions() {
  if (state.editing) return; // the edit's end draws it
  const list = $("sessions");
  const q = $("search").value.trim().toLowerCase();
  const shown = q ? state.sessions.filter((m) => titleOf(m).toLowerCase().includes(q)) : state.sessions;
  const items = shown.map(sessionItem);
  if (q && shown.length === 0) {
    const none = document.createElement("li");
    none.className = "s-none";
    none.textContent = "No matching chats";
    items.push(none);
  }
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const top = list.scrollTop;
  list.replaceChildren(...items);
  list.scrollTop = top;
  if (focused) refocus(focused.closest("li")?.dataset.id, focused.classList[0]);
}

// refocus puts the keyboard focus back on the button of class cls in the
// entry of session id, after a redraw replaced it.
function refocus(id, cls) {
  if (id) $("sessions").querySelector(`li[data-id="${CSS.escape(id)}"] .${cls}`)?.focus();
}

function sessionItem(m) {
  const li = document.createElement("li");
  li.dataset.id = m.sessionId;
  const b = document.createElement("button");
  b.type = "button";
  b.className = "session" + (m.sessionId === state.session ? " current" : "") + (m.busy ? " busy" : "");
  b.dataset.id = m.sessionId;
  if (m.sessionId === state.session) b.setAttribute("aria-current", "true");
  const t = document.createElement("span");
  t.className = "s-title";
  t.textContent = titleOf(m);
  const meta = document.createElement("span");
  meta.className = "s-meta";
  meta.textContent = `${when(m.updatedAt)} · ${m.messageCount} msg${m.channel && m.channel !== "webchat" ? " · " + m.channel : ""}`;
  b.append(t, meta);
  b.title = "Open (double-click or F2 to rename)";
  b.onclick = () => {
    switchSession(m.sessionId);
    closeSidebar();
  };
  b.ondblclick = () => startRename(m);
  b.onkeydown = (e) => {
    if (e.key === "F2") {
      e.preventDefault();
      startRename(m);
    }
  };
  const armed = state.armed === m.sessionId;
  const acts = document.createElement("span");
  acts.className = "s-actions";
  acts.append(
    action("s-rename", "✎", "Rename", `Rename “${titleOf(m)}”`, () => startRename(m)),
    action(
      "s-archive" + (armed ? " armed" : ""),
      armed ? "Archive?" : "✕",
      armed ? "Click again to archive" : "Archive (moves the files to sessions/archive/)",
      armed ? `Archive “${titleOf(m)}”? Press again to confirm` : `Archive “${titleOf(m)}”`,
      () => (armed ? archiveSession(m.sessionId) : arm(m.sessionId)),
    ),
  );
  li.append(b, acts);
  return li;
}

function action(cls, text, title, label, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.title = title;
  b.setAttribute("aria-label", label);
  b.onclick = onclick;
  return b;
}

// arm makes a sidebar archive button ask for a second click within 4 s
// (rather than a blocking confirm()).
function arm(id) {
  clearTimeout(state.armTimer);
  state.armed = id;
  if (id) state.armTimer = setTimeout(() => arm(""), 4000);
  renderSessions();
}

// startRename opens the title of session m for editing in its sidebar
// entry: Enter (or leaving the box) saves it through the API, Esc cancels.
function startRename(m) {
  // The entry and meta as shown now: a click's switch may have redrawn the list.
  m = state.sessions.find((s) => s.sessionId === m.sessionId) || m;
  const li = $("sessions").querySelector(`li[data-id="${CSS.escape(m.sessionId)}"]`);
  if (state.editing || !li) return;
  state.editing = m.sessionId;
  const edit = document.createElement("input");
  edit.className = "s-edit";
  edit.value = m.title || "";
  edit.placeholder = "Title";
  edit.setAttribute("aria-label", `New title for “${titleOf(m)}”`);
  li.replaceChildren(edit);
  edit.focus();
  edit.select();
  let saving = false;
  const end = () => {
    const hadFocus = document.activeElement === edit;
    state.editing = "";
    renderSessions();
    if (hadFocus) refocus(m.sessionId, "session");
  };
  const save = async () => {
    const title = edit.value.trim();
    if (saving) return;
    if (title === (m.title || "")) return end();
    saving = true;
    try {
      const r = await api(`/api/sessions/${encodeURIComponent(m.sessionId)}/rename`, "POST", { title });
      for (const s of state.sessions) if (s.sessionId === r.sessionId) s.title = r.title;
      if (r.sessionId === state.session) showTitle(r.title);
    } catch (e) {
      saving = false;
      toast("Could not rename: " + e.message);
      if (document.activeElement === edit) edit.select();
      else end();
      return;
    }
    end();
    refreshSessions().catch(() => {});
  };
  edit.onkeydown = (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      save();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // not the page's Esc (stop the reply, close the drawer)
      end();
    }
  };
  edit.onblur = () => {
    if (state.editing === m.sessionId) save();
  };
}

function when(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

// setSession records id as the current session: in the URL (a reload or a
// shared link opens it) and in localStorage (a bare URL reopens it).
function setSession(id, push) {
  state.session = id;
  localStorage.setItem(keys.session, id);
  const hash = "#s=" + encodeURIComponent(id);
  if (location.hash !== hash) history[push ? "pushState" : "replaceState"](null, "", hash);
  for (const b of document.querySelectorAll("#sessions .session")) {
    b.classList.toggle("current", b.dataset.id === id);
    if (b.dataset.id === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

// switchSession shows another session: a fresh connection attached to it
// (the protocol attaches a connection at connect time) and its history.
// A new chat (draft) has no socket until its first message.
function switchSession(id, push = true, draft = false) {
  if (id === state.session && state.ws) return;
  state.ws?.close();
  state.ws = null;
  state.draft = draft;
  state.first = "";
  setSession(id, push);
  state.tail = [];
  state.history = { messages: [], offset: 0, total: 0 };
  state.limit = 100;
  state.apiBusy = false;
  state.joinedMidTurn = false;
  state.retries = 0;
  state.usage = "";
  log.replaceChildren();
  updateBusy();
  connect();
  input.focus();
}

function sessionFromHash() {
  return validID(new URLSearchParams(location.hash.slice(1)).get("s"));
}

// openStart picks the session a bare URL opens: the one this browser had
// open when it is still stored, else the latest webchat session, else a
// new chat.
function openStart() {
  const stored = validID(localStorage.getItem(keys.session));
  const id = state.listed.has(stored) ? stored : state.sessions.find((m) => m.channel === "webchat")?.sessionId;
  state.draft = !id;
  setSession(id || newID(), false);
}

// newID is a random (version 4) UUID, as the gateway makes them.
// crypto.randomUUID needs a secure context, which a gateway on a LAN
// address over http is not.
function newID() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// validID returns id when the gateway would accept it as a session ID, else
// "": a bad ID in a hand-edited URL must not make every reconnect fail.
function validID(id) {
  return id && /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(id) ? id : "";
}

// newChat shows an empty chat under a new ID, stored by its first message.
function newChat() {
  if (state.draft) {
    input.focus();
    return;
  }
  switchSession(newID(), true, true);
}

async function fork() {
  try {
    const m = await api(`/api/sessions/${encodeURIComponent(state.session)}/fork`, "POST", {});
    refreshSessions().catch(() => {});
    switchSession(m.sessionId);
    toast("Forked into a new session.");
  } catch (e) {
    toast("Could not fork: " + e.message);
  }
}

// archive asks for a second click within 4 s instead of a blocking confirm().
let archiveArmed = 0;
async function archive() {
  const b = $("archive");
  if (!archiveArmed) {
    b.textContent = "Archive? Click again";
    b.classList.add("armed");
    archiveArmed = setTimeout(disarm, 4000);
    return;
  }
  disarm();
  archiveSession(state.session);
}

// archiveSession moves session id to the archive; the page leaves it if
// it is open.
async function archiveSession(id) {
  arm("");
  try {
    await api(`/api/sessions/${encodeURIComponent(id)}/archive`, "POST", {});
  } catch (e) {
    toast("Could not archive: " + e.message);
    return;
  }
  if (id === state.session) leave(id);
  toast("Archived. The files are in sessions/archive/.");
  refreshSessions().catch(() => {});
}

// leave moves the page off session id, gone from the list: to the next
// chat in the sidebar, else to a new chat.
function leave(id) {
  const next = state.sessions.find((m) => m.sessionId !== id);
  if (next) switchSession(next.sessionId);
  else switchSession(newID(), true, true);
}

function disarm() {
  clearTimeout(archiveArmed);
  archiveArmed = 0;
  $("archive").textContent = "Archive";
  $("archive").classList.remove("armed");
}

// --- page chrome --------------------------------------------------------

function isBusy() {
  return state.apiBusy || state.tail.some((i) => (i.kind === "live" && !i.done) || i.kind === "user");
}

function updateBusy() {
  // A chat not stored yet has nothing to fork or archive.
  $("fork").disabled = $("archive").disabled = state.draft;
  $("abort").disabled = !isBusy();
  document.body.classList.toggle("busy", isBusy());
}

function showTitle(title) {
  $("title").textContent = title || "New chat";
  document.title = (title ? title + " · " : "") + "miniclaw";
}

function setStatus(s, text) {
  const el = $("status");
  el.dataset.state = s;
  el.textContent = text;
}

let toastTimer = 0;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 6000);
}

function autosize() {
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 220) + "px";
}

function openSidebar() {
  document.body.classList.add("side-open");
  $("scrim").hidden = false;
  $("menu").setAttribute("aria-expanded", "true");
  (document.querySelector("#sessions .current") || $("new")).focus();
}

function closeSidebar() {
  document.body.classList.remove("side-open");
  $("scrim").hidden = true;
  $("menu").setAttribute("aria-expanded", "false");
}

async function showProvider() {
  try {
    const r = await fetch("/readyz", { cache: "no-store" });
    const h = await r.json();
    if (h.providerWarning) {
      $("banner").textContent = h.providerWarning;
      $("banner").hidden = false;
    }
  } catch {
    // The connection loop reports an unreachable gateway.
  }
}

// --- wiring -------------------------------------------------------------

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
input.addEventListener("input", autosize);
$("abort").addEventListener("click", abort);
$("new").addEventListener("click", newChat);
$("fork").addEventListener("click", fork);
$("archive").addEventListener("click", archive);
$("menu").addEventListener("click", () => (document.body.classList.contains("side-open") ? closeSidebar() : openSidebar()));
$("scrim").addEventListener("click", closeSidebar);
$("search").addEventListener("input", renderSessions);
setInterval(poll, pollEvery);
document.addEventListener("visibilitychange", poll);
window.addEventListener("focus", poll);
// Back online: try now instead of at the end of the backoff.
window.addEventListener("online", () => {
  if (!state.ws) connect();
});
window.addEventListener("hashchange", () => {
  const id = sessionFromHash();
  if (id && id !== state.session) switchSession(id, false, true); // stored or not: connect finds out
});
document.addEventListener("keydown", (e) => {
  if ($("auth").open) return;
  if (e.key === "Escape") {
    if (document.body.classList.contains("side-open")) closeSidebar();
    else abort();
  } else if (e.altKey && e.code === "KeyN") {
    e.preventDefault();
    newChat();
  } else if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
    e.preventDefault();
    const i = state.sessions.findIndex((m) => m.sessionId === state.session);
    const next = state.sessions[i + (e.key === "ArrowUp" ? -1 : 1)];
    if (next) switchSession(next.sessionId);
  } else if (e.key === "/" && document.activeElement !== input && !/^(INPUT|TEXTAREA)$/.test(document.activeElement?.tagName)) {
    e.preventDefault();
    input.focus();
  }
});

if (state.session) setSession(state.session, false);
updateBusy();
showProvider();
connect();
