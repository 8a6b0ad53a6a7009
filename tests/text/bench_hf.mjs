// bench_hf.mjs — the Hugging Face Rust tokenizer (npm tokenizers) side of
// bench_tokenizer.sh: load time of tokenizer.json and encode time of a text
// (best of N), in one JSON line; writes the ids for the cross-check.
// usage: GEMFA_NPM_MODULES=... node bench_hf.mjs TOKENIZER_JSON TEXT_FILE REPEATS IDS_OUT
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [jsonPath, textPath, repeats, idsOut] = process.argv.slice(2);
const require = createRequire(path.join(process.env.GEMFA_NPM_MODULES, "..", "package.json"));
const { Tokenizer } = require("tokenizers");
const text = fs.readFileSync(textPath, "utf8");
const now = () => Number(process.hrtime.bigint()) / 1e9;

let load = Infinity, tok;
for (let i = 0; i < 3; i++) {
  const t0 = now();
  tok = Tokenizer.fromFile(jsonPath);
  load = Math.min(load, now() - t0);
}
let encode = Infinity, ids;
for (let i = 0; i < Number(repeats); i++) {
  const t0 = now();
  const enc = await tok.encode(text, null, { addSpecialTokens: true });
  ids = enc.getIds();
  encode = Math.min(encode, now() - t0);
}
fs.writeFileSync(idsOut, Array.from(ids).join("\n") + "\n");
console.log(JSON.stringify({ engine: "hf-tokenizers-0.23.2", load_s: load, encode_s: encode,
  bytes: Buffer.byteLength(text), ids: ids.length }));
