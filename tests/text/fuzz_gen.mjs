// fuzz_gen.mjs — differential fuzz data from the Hugging Face Rust tokenizer
// (npm tokenizers@0.23.2).  Writes JSON Lines that test_fuzz.c replays
// against libgemfa:
//   {"text", "ids", "ids_bos", "ids_plain", "decoded", "decoded_skip"}
//     ids: encode without special tokens added; ids_bos: with them;
//     ids_plain: special tokens not parsed (HF split_special_tokens, emulated
//     by dropping the special added tokens: none of Gemma's non-special added
//     tokens overlaps a special one, so the two are the same);
//     decoded: decode(ids); decoded_skip: decode(ids_bos, skip_special_tokens)
//   {"rand_ids", "decoded", "decoded_skip"}: decode of random id sequences
//     rich in byte tokens (partial, invalid and valid UTF-8 runs).
// usage: node fuzz_gen.mjs TOKENIZER_DIR N_STRINGS N_ID_SEQS SEED OUT.jsonl
//   GEMFA_NPM_MODULES must point at the node_modules holding "tokenizers".
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [dir, nStr, nIds, seedArg, outPath] = process.argv.slice(2);
const modules = process.env.GEMFA_NPM_MODULES;
if (!dir || !outPath || !modules) {
  console.error("usage: GEMFA_NPM_MODULES=... node fuzz_gen.mjs DIR N_STRINGS N_ID_SEQS SEED OUT");
  process.exit(2);
}
const require = createRequire(path.join(modules, "..", "package.json"));
const { Tokenizer } = require("tokenizers");

const jsonText = fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8");
const tok = Tokenizer.fromString(jsonText);
const plainSpec = JSON.parse(jsonText);
plainSpec.added_tokens = plainSpec.added_tokens.filter((t) => !t.special);
const plain = Tokenizer.fromString(JSON.stringify(plainSpec));

let seed = Number(seedArg) >>> 0 || 12345;
const rnd = (n) => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % n;
};
const pick = (a) => a[rnd(a.length)];

// Persian-heavy pools: letters, whitespace, ZWNJ and friends, digits,
// Latin, emoji and rare characters (byte fallback), special and added
// token text (whole and broken), frequent words.
const pools = [
  [..."ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیآئءأؤۀةيكٔ"],
  [..."ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی"],
  [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", "\r\n", "\u00a0", "\u202f", "\u3000"],
  ["\u200c", "\u200c", "\u200d", "\u200e", "\u200f", "\u202b", "\u202c", "ـ", "ً", "ِ", "ّ", "ٔ", "\u0653"],
  [..."۰۱۲۳۴۵۶۷۸۹٠١٢٣0123456789"],
  [..."abcdefghijklmnopqrstuvwxyzABCXYZ.,!?;:()[]{}\"'-_/<>@#*«»؟،؛"],
  ["😀", "👍🏽", "👨‍👩‍👧", "🇮🇷", "❤️", "𝔘", "你", "好", "\ufeff", "\ufffd", "\u0000", "\u0001",
   "\u001f", "\u007f", "\u0085", "\u2581", "▁▁", "▁▁▁", "\ue000", "\u{10fffd}", "\u{1d11e}", "ꙮ", "ᚠ"],
  ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[multimodal]",
   "<div>", "</b>", "<table>", "<unused5>", "<unused6241>", "<image_soft_token>", "<start_of_image>",
   "<start_of", "_turn>", "<bos", "eos>", "<"],
  ["سلام", "می‌شود", "کتاب", "the", " the", "ing", "▁and", "برنامه‌نویسی", "ایران", "خانه‌ها", " و ", "است"],
];
const rareChar = () => {
  const ranges = [[0x80, 0x2ff], [0x370, 0x52f], [0x900, 0xdff], [0x1100, 0x11ff], [0x3040, 0x30ff],
                  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1faff], [0x10000, 0x1007f],
                  [0x20000, 0x2a6df]];
  const [lo, hi] = pick(ranges);
  return String.fromCodePoint(lo + rnd(hi - lo + 1));
};

function randomText() {
  let s = "";
  const len = rnd(48);
  for (let j = 0; j < len; j++) s += rnd(12) === 0 ? rareChar() : pick(pick(pools));
  if (rnd(12) === 0) s = s.repeat(1 + rnd(20));
  return s;
}

const texts = [];
for (let i = 0; i < Number(nStr); i++) texts.push(randomText());
texts.push("", " ", "\n".repeat(33), "\t".repeat(40), " ".repeat(40), "▁".repeat(40));

const ids = (encs) => encs.map((e) => Array.from(e.getIds()));
const noSpecial = ids(await tok.encodeBatch(texts, { addSpecialTokens: false }));
const withSpecial = ids(await tok.encodeBatch(texts, { addSpecialTokens: true }));
const plainIds = ids(await plain.encodeBatch(texts, { addSpecialTokens: false }));
const decoded = await tok.decodeBatch(noSpecial, false);
const decodedSkip = await tok.decodeBatch(withSpecial, true);

const out = fs.createWriteStream(outPath);
for (let i = 0; i < texts.length; i++) {
  out.write(JSON.stringify({ text: texts[i], ids: noSpecial[i], ids_bos: withSpecial[i],
    ids_plain: plainIds[i], decoded: decoded[i], decoded_skip: decodedSkip[i] }) + "\n");
}

// Random id sequences: mostly byte tokens, plus specials, added and ordinary pieces.
const size = tok.getVocabSize(true);
const byteId = (b) => tok.tokenToId("<0x" + b.toString(16).toUpperCase().padStart(2, "0") + ">");
const specials = ["<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<unused3>", "\n",
                  "<mask>", "▁", "▁▁"].map((t) => tok.tokenToId(t)).filter((x) => x != null);
const utf8Starts = [0xd8, 0xd9, 0xda, 0xdb, 0xe2, 0xef, 0xf0, 0xf4, 0xc2, 0xe0, 0xed];
const seqs = [];
for (let i = 0; i < Number(nIds); i++) {
  const seq = [];
  const len = 1 + rnd(24);
  for (let j = 0; j < len; j++) {
    const k = rnd(10);
    if (k < 3) seq.push(byteId(pick(utf8Starts)));
    else if (k < 6) seq.push(byteId(0x80 + rnd(64)));
    else if (k < 7) seq.push(byteId(rnd(256)));
    else if (k < 8) seq.push(pick(specials));
    else seq.push(rnd(size));
  }
  seqs.push(seq);
}
const seqDecoded = await tok.decodeBatch(seqs, false);
const seqSkip = await tok.decodeBatch(seqs, true);
for (let i = 0; i < seqs.length; i++)
  out.write(JSON.stringify({ rand_ids: seqs[i], decoded: seqDecoded[i], decoded_skip: seqSkip[i] }) + "\n");
out.end();
await new Promise((r) => out.on("finish", r));
console.error(`fuzz_gen: ${texts.length} strings, ${seqs.length} id sequences -> ${outPath}`);
