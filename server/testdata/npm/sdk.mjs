// Calls a running foretoken server with the official openai package:
// completions (plain and streamed), chat (plain and streamed) and
// embeddings. FORETOKEN_URL is the server's base URL; exits non-zero on
// the first failure.
import OpenAI from "openai";
import assert from "node:assert/strict";

const client = new OpenAI({ baseURL: process.env.FORETOKEN_URL + "/v1", apiKey: process.env.FORETOKEN_KEY || "none", maxRetries: 0 });
const model = "stories260K";

const plain = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 20, temperature: 0, logprobs: 2 });
assert.equal(plain.object, "text_completion");
assert.ok(plain.choices[0].text.startsWith(", there was a little girl"), plain.choices[0].text);
assert.equal(plain.choices[0].logprobs.tokens.length, 20);
assert.equal(plain.usage.completion_tokens, 20);

let streamed = "";
let usage = null;
const stream = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  for (const c of chunk.choices) streamed += c.text;
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(streamed, plain.choices[0].text);
assert.equal(usage.completion_tokens, 20);

const chat = await client.chat.completions.create({
  model: "qwen2-256.f16",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }],
  max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 2,
});
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(chat.choices[0].logprobs.content.length, chat.usage.completion_tokens);

let chatStreamed = "";
const chatStream = await client.chat.completions.create({
  model: "qwen2-256.f16",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }],
  max_tokens: 10, temperature: 0, stream: true,
});
for await (const chunk of chatStream) chatStreamed += chunk.choices[0]?.delta?.content ?? "";
assert.equal(chatStreamed, chat.choices[0].message.content);

// The SDK asks for base64 by default and decodes it to floats.
const emb = await client.embeddings.create({ model, input: ["Once upon a time there was a dog.", "A cat."] });
assert.equal(emb.data.length, 2);
assert.equal(emb.data[0].embedding.length, 64);
const norm = Math.hypot(...emb.data[0].embedding);
assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model));

await assert.rejects(client.completions.create({ model: "nope", prompt: "a" }), (err) => err.status === 404 && err.code === "model_not_found");

console.log("openai sdk: all calls passed");
