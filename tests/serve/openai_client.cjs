// openai_client.cjs NPM_DIR BASE_URL PROMPT MAX_TOKENS — the official OpenAI SDK
// against gemfa serve: one non-streamed and one streamed greedy chat
// completion, plus /v1/models; prints {"plain", "streamed", "models", ...} as JSON.
const { createRequire } = require("module");
const [npmDir, baseURL, prompt, maxTokens] = process.argv.slice(2);
const OpenAI = createRequire(npmDir + "/package.json")("openai");
const Client = OpenAI.default || OpenAI.OpenAI || OpenAI;

async function main() {
  const client = new Client({ baseURL: baseURL + "/v1", apiKey: "sk-test", maxRetries: 0, timeout: 60000 });
  const messages = [{ role: "user", content: prompt }];
  const plain = await client.chat.completions.create({
    model: "tiny-gemma3n", messages, temperature: 0, max_tokens: Number(maxTokens),
  });
  const stream = await client.chat.completions.create({
    model: "tiny-gemma3n", messages, temperature: 0, max_tokens: Number(maxTokens), stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = "", chunks = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    streamed += c.delta.content || "";
    if (c.finish_reason) finish = c.finish_reason;
  }
  const models = await client.models.list();
  let badStatus = null;
  try {
    await client.chat.completions.create({ model: "x", messages, n: 2 });
  } catch (e) {
    badStatus = { status: e.status, param: e.param, code: e.code };
  }
  console.log(JSON.stringify({
    plain: plain.choices[0].message.content, plain_finish: plain.choices[0].finish_reason,
    plain_usage: plain.usage, streamed, chunks, finish, usage,
    models: models.data.map((m) => m.id), bad: badStatus,
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
