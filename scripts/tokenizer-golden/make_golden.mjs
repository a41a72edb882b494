// Writes the tokenizer golden files under tests/tokenizer/data/:
//   corpus.jsonl               {"name", "text"} per line: the test corpus
//   golden_<tokenizer>.jsonl   a header line, then {"name", "ids"[, "decoded"]} per text
// ids are encode(text, {add_special_tokens: false}) from Hugging Face transformers.js;
// "decoded" is its decode(ids) when that differs from the text (NFC in Qwen3).
//
// Usage (from the repository root; node_modules must not land in the repository):
//   mkdir -p /tmp/tokref && (cd /tmp/tokref && npm install --ignore-scripts @huggingface/transformers@4.3.1)
//   TRANSFORMERS_JS=/tmp/tokref/node_modules/@huggingface/transformers \
//     node scripts/tokenizer-golden/make_golden.mjs [shared-data-dir]
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

const pkgDir = process.env.TRANSFORMERS_JS ?? '@huggingface/transformers';
const entry = pkgDir.startsWith('/') ? path.join(pkgDir, 'dist/transformers.node.mjs') : pkgDir;
const { PreTrainedTokenizer } = await import(entry);
const version = pkgDir.startsWith('/')
  ? JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'))).version
  : createRequire(import.meta.url)('@huggingface/transformers/package.json').version;

const shared = process.argv[2] ?? '../shared/data';
const outDir = 'tests/tokenizer/data';

function jsonl(file) {
  return fs.readFileSync(path.join(shared, file), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

const corpus = [];
const add = (name, text) => corpus.push({ name, text });

// Data sets: a deterministic sample of each.
jsonl('gsm8k_train.jsonl').filter((_, i) => i % 300 === 0).forEach((r, i) => add(`gsm8k_${i}`, r.question + '\n' + r.answer));
jsonl('math_train.jsonl').filter((_, i) => i % 300 === 7).forEach((r, i) => add(`math_${i}`, r.problem));
jsonl('mbpp_train.jsonl').filter((_, i) => i % 25 === 0).forEach((r, i) =>
  add(`mbpp_${i}`, r.text + '\n' + r.code + '\n' + r.test_list.join('\n')));

// Hand-written cases. U+0085 and U+FEFF are left out on purpose: JavaScript's \s differs
// from Oniguruma's there (see tests/tokenizer/test_tokenizer.cpp).
const cases = {
  empty: '',
  space: ' ',
  spaces_newline: '  \n',
  whitespace_runs: 'a  b   c    d\t\te\n\n\nf \t \n g\r\nh\r\n\r\n  i     ',
  trailing_spaces: 'end with spaces    ',
  leading_spaces: '     start',
  only_newlines: '\n\n\n\n',
  tabs_code: 'def f(x):\n\tif x:\n\t\treturn x  # comment\n\treturn None\n',
  python_code: 'import numpy as np\n\nclass Foo(object):\n    def __init__(self, n: int = 3) -> None:\n        self.xs = [i ** 2 for i in range(n)]  # squares\n        print(f"{self.xs!r}")\n',
  cpp_code: '#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x <<= 2;\n  return v[0] != 4;\n}\n',
  numbers: '0 1 12 123 1234 12345 123456 1234567 3.14159 -42 1e10 1,000,000 0x1F 2024-11-22',
  long_digits: '98765432109876543210987654321',
  contractions: "I'm sure you'll see it's what they've said: we'd go, he's here. DON'T SHOUT, IT'S LOUD. She'LL Re'VE",
  quotes: '"Hello," she said. \'Quoted\' `backtick` «guillemets» “curly” ‘single’',
  punctuation: 'Wait... what?! (Really?) [yes] {no} <maybe> a/b\\c | d&e; f: g~h ^ i% $5 #tag @user',
  cjk_chinese: '我们今天学习数学。这个问题的答案是四十二。',
  cjk_japanese: 'こんにちは、世界！カタカナとひらがなと漢字。東京タワーは333メートルです。',
  korean: '안녕하세요, 세계! 한국어 문장입니다.',
  emoji: 'Great job 👍🏽! 🎉🎉 Family: 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 heart ❤️ 🤖',
  mixed_scripts: 'English, Русский текст, Ελληνικά, العربية, עברית, हिन्दी, ไทย, 中文 and 日本語 mixed.',
  accents_precomposed: 'café naïve résumé Ångström façade São Paulo Zürich',
  accents_combining: 'cafe\u0301 nai\u0308ve A\u030angstro\u0308m e\u0301\u0301 o\u0323\u0302',
  hangul_jamo: '\u1100\u1161\u11a8 \u1112\u1161\u11ab',
  latex: 'Let $f(x) = \\frac{x^2 + 1}{\\sqrt{x}}$. Then $\\int_0^1 f(x)\\,dx \\approx 1.33$ and $\\boxed{42}$.',
  math_symbols: '∀x ∈ ℝ, x² ≥ 0; ∑_{i=1}^{n} i = n(n+1)/2 ≠ ∞ ≈ π ± √2 → ∂f/∂x',
  unicode_spaces: 'a\u00a0b\u2003c\u3000d\u2009e',
  long_word: 'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(4) + ' supercalifragilisticexpialidocious',
  long_spaces: ' '.repeat(300) + 'x' + '\t'.repeat(50) + '\n',
  long_repeat: 'a'.repeat(500),
  long_mixed_token: 'x'.repeat(120) + '_' + 'y'.repeat(120),
  url: 'See https://example.com/path?q=1&r=two#frag and mailto:someone@example.org.',
  json_text: '{"name": "zeroth", "values": [1, 2.5, null, true], "nested": {"k": "v"}}',
  markdown: '# Title\n\n- item one\n- item **two**\n\n```python\nprint("hi")\n```\n> quote\n',
  special_qwen: '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nEasy.\n</think>\n\nFour.<|im_end|><|endoftext|>',
  special_deepseek: '<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?<｜Assistant｜><think>\nEasy.\n</think>\nFour.<｜end▁of▁sentence｜>',
  special_adjacent: '<|im_end|><|im_end|>x<|im_start|> <｜User｜><｜User｜> y',
  special_partial: '<|im_start <|im_end| <｜User｜ <think <｜begin▁of▁sentence',
  special_in_word: 'abc<|endoftext|>def<think>ghi</think>jkl',
  tool_call: '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>',
  fim_tokens: '<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>    pass<｜fim▁begin｜>x<｜fim▁hole｜>y<｜fim▁end｜>',
  digits_in_words: 'abc123def4567ghi 1a2b3c v2.0.1 COVID-19 x86_64',
  kana_digits: 'テスト123テスト4567あいう890',
  apostrophes: "rock'n'roll o'clock '90s ''double'' l'amour",
  crlf: 'line one\r\nline two\r\n\r\nline four\r',
  symbols_runs: '!!!??? ... --- === +++ *** ### $$$ %%% &&& ||| ~~~ ^^^',
  single_chars: 'a',
  single_cjk: '字',
  single_emoji: '😀',
};
for (const [k, v] of Object.entries(cases)) add(k, v);

fs.writeFileSync(path.join(outDir, 'corpus.jsonl'), corpus.map((c) => JSON.stringify(c)).join('\n') + '\n');

for (const name of ['deepseek-v3', 'qwen3']) {
  const dir = path.join(shared, 'tokenizers', name);
  const tok = new PreTrainedTokenizer(
    JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')));
  const lines = [JSON.stringify({
    tokenizer: name, generator: 'scripts/tokenizer-golden/make_golden.mjs',
    package: '@huggingface/transformers', version,
    call: 'encode(text, {add_special_tokens: false}); decode(ids)',
  })];
  for (const c of corpus) {
    const ids = tok.encode(c.text, { add_special_tokens: false });
    const rec = { name: c.name, ids };
    const decoded = ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    if (decoded !== c.text) rec.decoded = decoded;
    lines.push(JSON.stringify(rec));
  }
  fs.writeFileSync(path.join(outDir, `golden_${name.replace('-', '_')}.jsonl`), lines.join('\n') + '\n');
}
console.log(`wrote ${corpus.length} texts`);
