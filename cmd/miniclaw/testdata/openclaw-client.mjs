// Drives OpenClaw's Node client (openclaw-node) against miniclaw's
// /openclaw endpoint and prints one JSON line per step for
// TestOpenClawNodeClient to check. Env: OPENCLAW_NODE (the module's
// dist/index.mjs), URL, TOKEN, ID_PATH (the device identity file).
import { pathToFileURL } from "node:url";

const { OpenClawClient } = await import(pathToFileURL(process.env.OPENCLAW_NODE).href);
const print = (step, v) => console.log(JSON.stringify({ step, ...v }));
const opts = { url: process.env.URL, deviceIdentityPath: process.env.ID_PATH, autoReconnect: false };
process.removeAllListeners("warning"); // the ws:// token warning goes to stderr otherwise

// A wrong token: the gateway refuses connect and closes the socket.
{
  const bad = new OpenClawClient({ ...opts, token: "wrong" });
  bad.on("error", () => {});
  try {
    await bad.connect();
    print("wrongtoken", { connected: true });
  } catch (err) {
    print("wrongtoken", { connected: false, error: String(err.message) });
  }
}

const client = new OpenClawClient({ ...opts, token: process.env.TOKEN });
client.on("error", (err) => console.error("client error:", err));
const hello = await client.connect();
print("hello", { protocol: hello.protocol, chat: client.hasMethod("chat.send"), agent: client.hasMethod("agent"), tick: hello.policy.tickIntervalMs });

const health = await client.health();
print("health", { ok: health.ok });

// Streaming chat on the main session.
const chunks = [];
for await (const chunk of client.chat("hello from node", { sessionKey: "main" })) {
  chunks.push(chunk.type === "text" ? chunk.text : `[${chunk.type}]`);
}
print("chat", { chunks, text: chunks.filter((c) => !c.startsWith("[")).join("") });

print("chatsync", { text: await client.chatSync("and again", { sessionKey: "main" }) });

const list = await client.sessions.list();
print("sessions", { keys: list.sessions.map((s) => s.key).sort() });

const hist = await client.sessions.history("main");
print("history", {
  roles: hist.messages.map((m) => m.role),
  texts: hist.messages.map((m) => m.content.map((p) => p.text).join("")),
});

// chat.send acknowledges with the run ID; the reply comes as chat events.
const finals = [];
client.on("event", (ev) => {
  if (ev.event === "chat" && ev.payload.state !== "delta") finals.push(ev.payload);
});
const sent = await client.sessions.send("main", "sent via chat.send");
print("send", { status: sent.status, hasRunId: typeof sent.runId === "string" });
// Its reply ends before the slow one starts: the scripted model plays its
// turns in order, whichever session asks.
for (let i = 0; i < 200 && !finals.some((f) => f.sessionKey === "agent:main:main"); i++) {
  await new Promise((r) => setTimeout(r, 50));
}

// Abort a slow reply once its first words arrived.
let first = "";
let abortRes;
for await (const chunk of client.chat("go slowly", { sessionKey: "slow" })) {
  if (chunk.type === "text" && !first) {
    first = chunk.text;
    abortRes = await client.chatAbort("slow");
  }
}
// The aborted run's chat event comes after the abort's response.
for (let i = 0; i < 100 && !finals.some((f) => f.sessionKey === "agent:main:slow"); i++) {
  await new Promise((r) => setTimeout(r, 50));
}
print("abort", { first, aborted: abortRes?.aborted, states: finals.map((f) => `${f.sessionKey}:${f.state}`).sort() });

await client.disconnect();
