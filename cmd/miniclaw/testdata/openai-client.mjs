// The official openai npm client against a miniclaw gateway, as a user's
// script would use it. TestOpenAIClient runs it with the pinned Node and
// checks what it prints: one JSON line per step.
//
// Environment: OPENAI_MODULE (the path of openai/index.mjs), BASE_URL
// (http://host:port/v1), API_KEY (the gateway token).
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(pathToFileURL(process.env.OPENAI_MODULE).href);
const client = new OpenAI({ apiKey: process.env.API_KEY, baseURL: process.env.BASE_URL, maxRetries: 0 });
const print = (step, v) => console.log(JSON.stringify({ step, ...v }));

const models = await client.models.list();
print('models', { ids: models.data.map((m) => m.id), owned_by: models.data[0].owned_by });

{
  const { data, response } = await client.chat.completions
    .create({ model: 'miniclaw', user: 'interop', messages: [{ role: 'user', content: 'hello' }] })
    .withResponse();
  print('create', {
    object: data.object,
    content: data.choices[0].message.content,
    role: data.choices[0].message.role,
    finish: data.choices[0].finish_reason,
    usage: data.usage,
    session: response.headers.get('x-miniclaw-session'),
  });
}

{
  const stream = await client.chat.completions.create({
    model: 'miniclaw',
    user: 'interop',
    stream: true,
    stream_options: { include_usage: true },
    messages: [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'an earlier reply the gateway does not replay' },
      { role: 'user', content: [{ type: 'text', text: 'stream' }, { type: 'text', text: 'please' }] },
    ],
  });
  let role = '', text = '', finish = '', usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ||= c.delta.role ?? '';
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  print('stream', { role, text, finish, usage, chunks });
}

{
  // The helper that assembles a stream into a completion parses every
  // chunk strictly.
  const runner = client.chat.completions.stream({ model: 'miniclaw', user: 'interop', messages: [{ role: 'user', content: 'helper' }] });
  const final = await runner.finalChatCompletion();
  print('helper', { content: final.choices[0].message.content, finish: final.choices[0].finish_reason });
}

try {
  await new OpenAI({ apiKey: 'wrong', baseURL: process.env.BASE_URL, maxRetries: 0 }).models.list();
  print('wrongkey', { error: 'none' });
} catch (err) {
  print('wrongkey', { auth: err instanceof OpenAI.AuthenticationError, status: err.status, code: err.code, type: err.type });
}

{
  // A client that goes away after the first words: the turn goes on.
  const ac = new AbortController();
  let first = '', error = '';
  try {
    const stream = await client.chat.completions.create(
      { model: 'miniclaw', user: 'aborter', stream: true, messages: [{ role: 'user', content: 'go' }] },
      { signal: ac.signal },
    );
    for await (const chunk of stream) {
      first += chunk.choices[0]?.delta.content ?? '';
      if (first) ac.abort();
    }
  } catch (err) {
    error = err.constructor.name; // openai 7 ends the iteration quietly instead
  }
  print('abort', { first, aborted: ac.signal.aborted, error });
  // The session's next turn waits on its lane for the aborted one.
  const { data, response } = await client.chat.completions
    .create({ model: 'miniclaw', user: 'aborter', messages: [{ role: 'user', content: 'and then?' }] })
    .withResponse();
  print('after', { content: data.choices[0].message.content, session: response.headers.get('x-miniclaw-session') });
}
