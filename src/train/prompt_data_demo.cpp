// The CPU demo's data (prompt_data.h, docs/data.md "demo task"): synthetic multi-step
// integer word problems, a pretraining corpus that teaches the arithmetic partly and
// the generic habit of copying delimiters from an instruction into a reply, the RL
// train/eval prompt sets, and the forbidden-text check of the corpus.
//
// Determinism: every random choice comes from SplitMix64 streams keyed by
// rng_stream_key(seed, "demo/<part>") and reduced with integer arithmetic only, so the
// bytes depend on the options alone. Held-out problems are chosen first; a problem is
// identified by its key (family and numbers, not names or objects), and no train
// prompt, corpus word problem or corpus one-step fact has an eval key.
// Must not: use the R1-Zero tags or template text anywhere in the corpus.
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"

namespace zeroth {
namespace {

// The corpus mix, the demo's main knobs (docs/data.md, "demo task"): percent of documents
// that are drills, stories, plain Q/A and repeats (the rest are instruction documents);
// of the instruction documents, the share with two-part (work + result) replies and the
// share whose task is a word problem; the share of tag names (and text-task words) that
// are made-up letter strings, which only copying predicts. The default mix, and the
// copy-forcing one (DemoDataOptions::copy_forcing) with more copying signal.
struct Mix {
  int drill_pct, story_pct, qa_pct, repeat_pct;
  int arithmetic_task_pct;
  int made_up_name_pct;
};
constexpr Mix kDefaultMix = {15, 15, 25, 0, 75, 0};
constexpr Mix kCopyForcingMix = {12, 12, 18, 18, 70, 70};
constexpr int kTwoPartPct = 70;
// The share of questions followed by a stray period.
constexpr int kStrayPeriodPct = 25;

class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform integer in [lo, hi].
  int64_t in(int64_t lo, int64_t hi) { return lo + int64_t(next() % uint64_t(hi - lo + 1)); }
  bool chance(int percent) { return in(0, 99) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[size_t(in(0, int64_t(v.size()) - 1))]; }

 private:
  uint64_t state_;
};

const std::vector<std::string> kNames = {
    "Tom",  "Anna", "Ben",  "Maria", "Sam",   "Lily",  "Omar", "Mia",  "Leo",   "Zoe",
    "Ravi", "Nora", "Ivan", "Emma",  "Jack",  "Sara",  "Noah", "Ella", "Yuki",  "Liam",
    "Ada",  "Finn", "Rosa", "Hugo",  "Ines",  "Kofi",  "Lena", "Marco", "Priya", "Theo",
    "Amir", "Chloe", "Dan", "Eva",   "Felix", "Gina",  "Hana", "Igor", "Jade",  "Karl"};
const std::vector<std::string> kItems = {
    "apples", "pears",   "marbles", "stickers", "books",    "pencils", "coins",   "cards",
    "stamps", "shells",  "cookies", "eggs",     "balloons", "toys",    "buttons", "flowers",
    "candies", "beads",  "rocks",   "tickets",  "plums",    "crayons", "nuts",    "leaves"};
const std::vector<std::string> kBoxes = {"boxes", "bags", "packs", "jars", "baskets", "crates", "trays", "cartons"};
const std::vector<std::string> kPlaces = {"box", "basket", "jar", "bag", "drawer", "bowl"};
const std::vector<std::string> kDays = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"};
const std::vector<std::string> kWords = {
    "green", "river", "table", "cloud", "seven", "paper", "stone", "light", "music", "bread",
    "horse", "water", "smile", "chair", "plant", "train", "grass", "shoe",  "lemon", "tiger"};

// Problem families: numbers first (they make the key), then the surface text.
enum Family { kAdd, kSub, kMul, kDiv, kAddSub, kMulSub, kMore, kSum3, kNumFamilies };
const char* const kFamilyNames[kNumFamilies] = {"add", "sub", "mul", "div", "addsub", "mulsub", "more", "sum3"};

std::string num(int64_t v) { return std::to_string(v); }

struct Made {
  DemoProblem p;
  std::string story;  // the problem told as a narrative with its worked answer
};

Made make_problem(Rng& r, int family) {
  Made m;
  DemoProblem& p = m.p;
  const std::string N = r.pick(kNames);
  std::string M = r.pick(kNames);
  while (M == N) M = r.pick(kNames);
  const std::string it = r.pick(kItems), box = r.pick(kBoxes), place = r.pick(kPlaces);
  const int form = int(r.in(0, 2));
  switch (family) {
    case kAdd: {
      const int64_t a = r.in(2, 99), b = r.in(2, 99), s = a + b;
      p.key = "add:" + num(a) + ":" + num(b);
      p.answer = s;
      p.steps = num(a) + " + " + num(b) + " = " + num(s) + ".";
      if (form == 0)
        p.question = N + " has " + num(a) + " " + it + ". " + N + " buys " + num(b) + " more " + it +
                     ". How many " + it + " does " + N + " have now?";
      else if (form == 1)
        p.question = N + " has " + num(a) + " " + it + " and finds " + num(b) + " more. How many " + it +
                     " does " + N + " have now?";
      else
        p.question = "There are " + num(a) + " " + it + " in a " + place + ". " + N + " puts " + num(b) +
                     " more " + it + " in it. How many " + it + " are in the " + place + " now?";
      m.story = N + " had " + num(a) + " " + it + " and got " + num(b) + " more, so " + N + " has " + num(a) +
                " + " + num(b) + " = " + num(s) + " " + it + ".";
      break;
    }
    case kSub: {
      const int64_t a = r.in(10, 99), b = r.in(1, a - 1), d = a - b;
      p.key = "sub:" + num(a) + ":" + num(b);
      p.answer = d;
      p.steps = num(a) + " - " + num(b) + " = " + num(d) + ".";
      if (form == 0)
        p.question = N + " has " + num(a) + " " + it + " and gives " + num(b) + " of them to " + M +
                     ". How many " + it + " does " + N + " have left?";
      else if (form == 1)
        p.question = N + " had " + num(a) + " " + it + ". " + N + " lost " + num(b) + " of them. How many " + it +
                     " does " + N + " have now?";
      else
        p.question = "A " + place + " holds " + num(a) + " " + it + ". " + N + " takes " + num(b) + " " + it +
                     " out. How many " + it + " are left in the " + place + "?";
      m.story = N + " had " + num(a) + " " + it + " and gave away " + num(b) + ", so " + num(a) + " - " + num(b) +
                " = " + num(d) + " " + it + " are left.";
      break;
    }
    case kMul: {
      const int64_t a = r.in(2, 12), b = r.in(2, 25), x = a * b;
      p.key = "mul:" + num(a) + ":" + num(b);
      p.answer = x;
      p.steps = num(a) + " * " + num(b) + " = " + num(x) + ".";
      if (form == 2)
        p.question = N + " has " + num(a) + " " + box + " with " + num(b) + " " + it + " in each. How many " + it +
                     " does " + N + " have in total?";
      else
        p.question = N + " buys " + num(a) + " " + box + " of " + it + ". Each of the " + box + " has " + num(b) +
                     " " + it + ". How many " + it + " does " + N + " buy?";
      m.story = N + " bought " + num(a) + " " + box + " of " + it + " with " + num(b) + " in each, which is " +
                num(a) + " * " + num(b) + " = " + num(x) + " " + it + ".";
      break;
    }
    case kDiv: {
      const int64_t b = r.in(2, 9), q = r.in(2, 15), a = b * q;
      p.key = "div:" + num(b) + ":" + num(q);
      p.answer = q;
      p.steps = num(a) + " / " + num(b) + " = " + num(q) + ".";
      if (form == 2)
        p.question = N + " puts " + num(a) + " " + it + " into " + num(b) + " " + box +
                     " with the same number in each. How many " + it + " go in each of the " + box + "?";
      else
        p.question = N + " shares " + num(a) + " " + it + " equally among " + num(b) + " friends. How many " + it +
                     " does each friend get?";
      m.story = N + " shared " + num(a) + " " + it + " among " + num(b) + " friends, so each got " + num(a) +
                " / " + num(b) + " = " + num(q) + " " + it + ".";
      break;
    }
    case kAddSub: {
      const int64_t a = r.in(10, 60), b = r.in(2, 40), s = a + b, c = r.in(1, s - 1), d = s - c;
      p.key = "addsub:" + num(a) + ":" + num(b) + ":" + num(c);
      p.answer = d;
      p.steps = num(a) + " + " + num(b) + " = " + num(s) + ". " + num(s) + " - " + num(c) + " = " + num(d) + ".";
      p.question = N + " has " + num(a) + " " + it + ", buys " + num(b) + " more and then gives " + num(c) +
                   " to " + M + ". How many " + it + " does " + N + " have now?";
      m.story = N + " had " + num(a) + " " + it + " and bought " + num(b) + " more, so " + num(a) + " + " +
                num(b) + " = " + num(s) + ". Then " + N + " gave " + num(c) + " to " + M + ", so " + num(s) +
                " - " + num(c) + " = " + num(d) + " " + it + " are left.";
      break;
    }
    case kMulSub: {
      const int64_t a = r.in(2, 9), b = r.in(2, 10), x = a * b, c = r.in(1, x - 1), d = x - c;
      p.key = "mulsub:" + num(a) + ":" + num(b) + ":" + num(c);
      p.answer = d;
      p.steps = num(a) + " * " + num(b) + " = " + num(x) + ". " + num(x) + " - " + num(c) + " = " + num(d) + ".";
      p.question = N + " buys " + num(a) + " " + box + " of " + it + " with " + num(b) + " " + it + " in each. " +
                   N + " gives away " + num(c) + " " + it + ". How many " + it + " does " + N + " have left?";
      m.story = N + " bought " + num(a) + " " + box + " of " + num(b) + " " + it + ", which is " + num(a) + " * " +
                num(b) + " = " + num(x) + ". After giving away " + num(c) + ", " + N + " has " + num(x) + " - " +
                num(c) + " = " + num(d) + " " + it + ".";
      break;
    }
    case kMore: {
      const int64_t a = r.in(2, 50), b = r.in(1, 30), m2 = a + b, s = a + m2;
      p.key = "more:" + num(a) + ":" + num(b);
      p.answer = s;
      p.steps = num(a) + " + " + num(b) + " = " + num(m2) + ". " + num(a) + " + " + num(m2) + " = " + num(s) + ".";
      p.question = N + " has " + num(a) + " " + it + ". " + M + " has " + num(b) + " more " + it + " than " + N +
                   ". How many " + it + " do they have together?";
      m.story = N + " has " + num(a) + " " + it + " and " + M + " has " + num(b) + " more, so " + M + " has " +
                num(a) + " + " + num(b) + " = " + num(m2) + ". Together they have " + num(a) + " + " + num(m2) +
                " = " + num(s) + " " + it + ".";
      break;
    }
    default: {
      ZT_ASSERT(family == kSum3);
      const int64_t a = r.in(2, 40), b = r.in(2, 40), c = r.in(2, 40), s = a + b, t = s + c;
      const int64_t d0 = r.in(0, 2);
      p.key = "sum3:" + num(a) + ":" + num(b) + ":" + num(c);
      p.answer = t;
      p.steps = num(a) + " + " + num(b) + " = " + num(s) + ". " + num(s) + " + " + num(c) + " = " + num(t) + ".";
      p.question = N + " picks " + num(a) + " " + it + " on " + kDays[size_t(d0)] + ", " + num(b) + " on " +
                   kDays[size_t(d0 + 1)] + " and " + num(c) + " on " + kDays[size_t(d0 + 2)] + ". How many " + it +
                   " does " + N + " pick in all?";
      m.story = N + " picked " + num(a) + ", " + num(b) + " and " + num(c) + " " + it + " on three days: " + num(a) +
                " + " + num(b) + " = " + num(s) + " and " + num(s) + " + " + num(c) + " = " + num(t) + " " + it +
                " in all.";
      break;
    }
  }
  return m;
}

// ---- corpus documents ----

struct Delims {
  std::string open, close;
};

const std::vector<std::string> kTagNames = {
    "calc",   "work",  "steps", "plan",   "note",   "scratch", "draft",    "reason", "logic",  "sketch",
    "result", "final", "reply", "output", "value",  "sum",     "solution", "res",    "number", "total",
    "box",    "out",   "idea",  "check",  "method", "body",    "main",     "end",    "mark",   "tip"};
const std::vector<Delims> kBracketPairs = {{"[[", "]]"}, {"{{", "}}"}, {"((", "))"}, {"<<", ">>"}, {"[", "]"},
                                           {"##", "##"}, {"**", "**"}, {"||", "||"}, {"@@", "@@"}, {"~~", "~~"},
                                           {"%%", "%%"}, {"((", ")"},  {"-=", "=-"}, {"|>", "<|"}, {"::", "::"}};

// A made-up lower-case word of `lo`..`hi` letters, alternating consonants and vowels half
// the time (pronounceable) and any letters otherwise; never one of the R1-Zero tag names.
std::string made_up_word(Rng& r, int lo, int hi) {
  static const char kConsonants[] = "bcdfghjklmnpqrstvwxz", kVowels[] = "aeiouy";
  for (;;) {
    const int64_t n = r.in(lo, hi);
    const bool pronounceable = r.chance(50);
    const bool vowel_first = r.chance(30);
    std::string w;
    for (int64_t i = 0; i < n; ++i) {
      if (!pronounceable) w += char('a' + r.in(0, 25));
      else if ((i % 2 == 0) != vowel_first) w += kConsonants[r.in(0, 19)];
      else w += kVowels[r.in(0, 5)];
    }
    if (w != "think" && w != "answer") return w;
  }
}

// A name from `list`, or made up `made_up_pct` percent of the time (no draw when 0).
std::string name_from(Rng& r, const std::vector<std::string>& list, int made_up_pct) {
  return made_up_pct > 0 && r.chance(made_up_pct) ? made_up_word(r, 3, 8) : r.pick(list);
}

Delims make_delims(Rng& r, int made_up_pct) {
  const int kind = int(r.in(0, 9));
  if (kind < 6) {  // angle tags, the most common markup
    std::string n = name_from(r, kTagNames, made_up_pct);
    if (r.chance(10))
      for (auto& c : n) c = char(c - 'a' + 'A');
    return {"<" + n + ">", "</" + n + ">"};
  }
  if (kind < 7) {
    const std::string n = name_from(r, kTagNames, made_up_pct);
    return {"[" + n + "]", "[/" + n + "]"};
  }
  return r.pick(kBracketPairs);
}

std::string pick_str(Rng& r, std::initializer_list<const char*> options) {
  const int64_t i = r.in(0, int64_t(options.size()) - 1);
  return *(options.begin() + i);
}

struct Roles {
  std::string asker, helper;  // the labels before the question and the reply
};

const std::vector<Roles> kRoleLabels = {{"User:", "Assistant:"}, {"Question:", "Answer:"}, {"Q:", "A:"},
                                        {"Student:", "Tutor:"},   {"Problem:", "Solution:"}, {"Input:", "Output:"},
                                        {"Child:", "Teacher:"},   {"Ask:", "Reply:"},       {"Visitor:", "Guide:"}};

std::string a_or_an(const std::string& word) {
  return std::string("aeiou").find(word[0]) != std::string::npos ? "an " + word : "a " + word;
}

constexpr int kNumFillers = 14;

// Filler sentence `which` of the preamble (roles drawn from r).
std::string filler(Rng& r, int which) {
  const std::string helper = pick_str(r, {"helper", "tutor", "teacher", "assistant", "guide", "bot"});
  const std::string asker = pick_str(r, {"student", "user", "child", "friend", "visitor", "learner"});
  switch (which) {
    case 0: return "The " + helper + " helps " + a_or_an(asker) + " with short questions.";
    case 1: return "The " + helper + " reads each question with care and replies politely.";
    case 2: return "Numbers are always written with digits.";
    case 3: return "Every reply follows the rules below.";
    case 4: return "The " + asker + " asks, and the " + helper + " replies.";
    case 5: return "Keep each step short and clear.";
    case 6: return "Check each step before writing the result.";
    case 7: return "This is a short exchange with " + a_or_an(helper) + ".";
    case 8: return "The " + helper + " works the problem out step by step before giving the result.";
    case 9: return "Write simple sentences.";
    case 10: return "Nothing comes after the last closing mark.";
    case 11: return "Each question is about everyday things like fruit, toys and money.";
    case 12: return "The " + helper + " is careful with sums and never guesses.";
    default: return "Below is one question and one reply.";
  }
}

std::string two_part_instruction(Rng& r, const Delims& w, const Delims& v) {
  const std::string W = w.open + " " + w.close, V = v.open + " " + v.close;
  switch (r.in(0, 8)) {
    case 7: return "Put the reasoning inside " + W + " and the answer inside " + V + ".";
    case 8: return "Show your reasoning between " + w.open + " and " + w.close + ", then the answer between " +
                   v.open + " and " + v.close + ".";
    case 0: return "Put the working inside " + W + " and the final number inside " + V + ".";
    case 1: return "Write your steps between " + w.open + " and " + w.close + ", then write the result between " +
                   v.open + " and " + v.close + ".";
    case 2: return "The steps go in " + W + " and the result goes in " + V + ", like this: " + w.open + " steps " +
                   w.close + " " + v.open + " result " + v.close + ".";
    case 3: return "First show the work inside " + W + ". Then give only the result inside " + V + ".";
    case 4: return "Reply in the form " + w.open + " work " + w.close + " " + v.open + " result " + v.close + ".";
    case 5: return "The work and the result are wrapped in " + W + " and " + V + ", in that order, for example " +
                   w.open + " work goes here " + w.close + " " + v.open + " result goes here " + v.close + ".";
    default: return "Think it through inside " + W + " and state the result inside " + V + ".";
  }
}

std::string one_part_instruction(Rng& r, const Delims& v) {
  switch (r.in(0, 4)) {
    case 0: return "Write your result between " + v.open + " and " + v.close + ".";
    case 1: return "Put the final number inside " + v.open + " " + v.close + ".";
    case 2: return "Give the result in the form " + v.open + " result " + v.close + ".";
    case 3: return "Wrap the reply in " + v.open + " " + v.close + ".";
    default: return "Reply with the result only, enclosed in " + v.open + " " + v.close + ".";
  }
}

// A task for an instruction document: the question, the worked part and the result.
struct Task {
  std::string question, work, result;
};

Task text_task(Rng& r, int made_up_pct) {
  Task t;
  const std::string w = name_from(r, kWords, made_up_pct);
  switch (r.in(0, 4)) {
    case 0:
      t.question = "Write the word " + w + " three times.";
      t.work = "The word is " + w + ".";
      t.result = w + " " + w + " " + w;
      break;
    case 1: {
      const int64_t a = r.in(0, 999), b = r.in(0, 999);
      t.question = "Which is larger, " + num(a) + " or " + num(b) + "?";
      t.work = "Compare " + num(a) + " and " + num(b) + ".";
      t.result = num(std::max(a, b));
      break;
    }
    case 2: {
      const int64_t n = r.in(0, 998);
      t.question = "What number comes after " + num(n) + "?";
      t.work = num(n) + " + 1 = " + num(n + 1) + ".";
      t.result = num(n + 1);
      break;
    }
    case 3:
      t.question = "Spell the word " + w + ".";
      t.work = "The word " + w + " has " + num(int64_t(w.size())) + " letters.";
      for (size_t i = 0; i < w.size(); ++i) t.result += (i ? "-" : "") + std::string(1, w[i]);
      break;
    default: {
      const std::string w2 = name_from(r, kWords, made_up_pct);
      t.question = "Name the first word of: " + w + " " + w2 + ".";
      t.work = "The words are " + w + " and " + w2 + ".";
      t.result = w;
      break;
    }
  }
  return t;
}

class CorpusWriter {
 public:
  CorpusWriter(uint64_t seed, const Mix& mix, const std::unordered_set<std::string>& eval_keys, DemoData& out)
      : r_(rng_stream_key(seed, "demo/corpus")), mix_(mix), eval_keys_(eval_keys), out_(out) {}

  void document() {
    const int64_t k = r_.in(0, 99);
    std::string doc;
    const char* kind;
    const Mix& m = mix_;
    if (k < m.drill_pct) kind = "drill", doc = drill();
    else if (k < m.drill_pct + m.story_pct) kind = "story", doc = problem().story;
    else if (k < m.drill_pct + m.story_pct + m.qa_pct) kind = "qa", doc = qa();
    else if (k < m.drill_pct + m.story_pct + m.qa_pct + m.repeat_pct) kind = "repeat", doc = repeat();
    else kind = "instruction", doc = instruction();
    ++out_.corpus_doc_kinds[kind];
    ++out_.corpus_documents;
    out_.corpus += doc;
    out_.corpus += '\n';
  }

 private:
  Made problem() {
    for (;;) {
      Made m = make_problem(r_, int(r_.in(0, kNumFamilies - 1)));
      if (eval_keys_.count(m.p.key)) continue;
      out_.corpus_keys.push_back(m.p.key);
      return m;
    }
  }

  // One arithmetic fact "a op b = c." (never the one step of an eval problem).
  std::string fact() {
    for (;;) {
      const int op = int(r_.in(0, 3));
      int64_t a, b;
      std::string key, text;
      if (op == 0) {
        a = r_.in(0, 99), b = r_.in(0, 99), key = "add:" + num(a) + ":" + num(b);
        if (r_.chance(15) && a >= 10 && b >= 10 && (a % 10 + b % 10) >= 10)
          text = num(a) + " + " + num(b) + ": " + num(a % 10) + " + " + num(b % 10) + " = " + num(a % 10 + b % 10) +
                 ", write " + num((a + b) % 10) + " and carry 1. " + num(a / 10) + " + " + num(b / 10) + " + 1 = " +
                 num(a / 10 + b / 10 + 1) + ". So " + num(a) + " + " + num(b) + " = " + num(a + b) + ".";
        else
          text = num(a) + " + " + num(b) + " = " + num(a + b) + ".";
      } else if (op == 1) {
        a = r_.in(0, 99), b = r_.in(0, a), key = "sub:" + num(a) + ":" + num(b);
        text = num(a) + " - " + num(b) + " = " + num(a - b) + ".";
      } else if (op == 2) {
        a = r_.in(0, 12), b = r_.chance(50) ? r_.in(0, 12) : r_.in(2, 25), key = "mul:" + num(a) + ":" + num(b);
        text = num(a) + " * " + num(b) + " = " + num(a * b) + ".";
      } else {
        b = r_.in(1, 9), a = r_.in(0, 15), key = "div:" + num(b) + ":" + num(a);
        text = num(a * b) + " / " + num(b) + " = " + num(a) + ".";
      }
      if (!eval_keys_.count(key)) return text;
    }
  }

  // The question as a role-labelled document asks it: sometimes with a period after its
  // final mark, as a template "User: {prompt}. Assistant:" renders it.
  std::string asked(const std::string& q) { return r_.chance(kStrayPeriodPct) ? q + "." : q; }

  std::string drill() {
    std::string d;
    const int64_t n = r_.in(5, 10);
    for (int64_t i = 0; i < n; ++i) d += (i ? " " : "") + fact();
    return d;
  }

  std::string qa() {
    const Made m = problem();
    const Roles& roles = r_.pick(kRoleLabels);
    std::string reply;
    switch (r_.in(0, 3)) {
      case 0: reply = num(m.p.answer); break;
      case 1: reply = m.p.steps + " The answer is " + num(m.p.answer) + "."; break;
      case 2: reply = m.p.steps + " So the result is " + num(m.p.answer) + "."; break;
      default: reply = m.p.steps; break;
    }
    return roles.asker + " " + asked(m.p.question) + " " + roles.helper + " " + reply;
  }

  // Text whose only predictable part is a copy: a list of made-up words, said again once or
  // twice after a short phrase, sometimes inside made-up tags. The plainest signal for
  // in-context copying (induction), which the instruction documents' tags and the word
  // problems' numbers need; a small model finds it much sooner on this than on the mix.
  std::string repeat() {
    const int64_t n = r_.in(3, 10);
    std::string list;
    for (int64_t i = 0; i < n; ++i) list += (i ? " " : "") + made_up_word(r_, 2, 7);
    std::string doc;
    switch (r_.in(0, 3)) {
      case 0: doc = list + ". Again: " + list + "."; break;
      case 1: doc = "Repeat after me: " + list + ". " + list + "."; break;
      case 2: {
        const std::string a = made_up_word(r_, 3, 6), b = made_up_word(r_, 3, 6);
        doc = "<" + a + "> " + list + " </" + a + "> <" + b + "> " + list + " </" + b + ">";
        break;
      }
      default: doc = "The list is " + list + ". Once more, the list is " + list + "."; break;
    }
    if (r_.chance(40)) doc += " And again: " + list + ".";
    return doc;
  }

  std::string instruction() {
    Task t;
    if (r_.chance(mix_.arithmetic_task_pct)) {
      const Made m = problem();
      t.question = m.p.question;
      t.work = pick_str(r_, {"", "", "First, ", "We compute ", "So "}) + m.p.steps;
      t.result = num(m.p.answer);
    } else {
      t = text_task(r_, mix_.made_up_name_pct);
    }
    const bool two_part = r_.chance(kTwoPartPct);
    const Delims v = make_delims(r_, mix_.made_up_name_pct);
    Delims w = make_delims(r_, mix_.made_up_name_pct);
    while (w.open == v.open) w = make_delims(r_, mix_.made_up_name_pct);
    const std::string rule = two_part ? two_part_instruction(r_, w, v) : one_part_instruction(r_, v);
    std::vector<std::string> pre;
    const int64_t n = r_.in(0, 6);
    std::vector<char> used(kNumFillers, 0);
    while (int64_t(pre.size()) < n) {
      const int which = int(r_.in(0, kNumFillers - 1));
      if (!used[size_t(which)]) used[size_t(which)] = 1, pre.push_back(filler(r_, which));
    }
    pre.insert(pre.begin() + r_.in(0, n), rule);  // the rule anywhere in the preamble
    std::string doc;
    for (const auto& s : pre) doc += s + " ";
    const Roles& roles = r_.pick(kRoleLabels);
    doc += roles.asker + " " + asked(t.question) + " " + roles.helper + " ";
    if (two_part) doc += w.open + " " + t.work + " " + w.close + " ";
    doc += v.open + " " + t.result + " " + v.close;
    return doc;
  }

  Rng r_;
  const Mix mix_;
  const std::unordered_set<std::string>& eval_keys_;
  DemoData& out_;
};

}  // namespace

// Draws in a row without a new problem before the problem space counts as used up.
constexpr int64_t kMaxDemoMisses = 100000;

DemoData generate_demo_data(const DemoDataOptions& o) {
  ZT_ASSERT(o.train_prompts > 0 && o.eval_prompts > 0 && o.corpus_bytes > 0);
  DemoData out;
  std::unordered_set<std::string> eval_keys;
  {  // held out first: families in turn, unique keys
    Rng r(rng_stream_key(o.seed, "demo/eval"));
    int64_t misses = 0;  // draws in a row that gave no new problem
    for (int64_t i = 0; int64_t(out.eval.size()) < o.eval_prompts; ++i) {
      Made m = make_problem(r, int(i % kNumFamilies));
      if (eval_keys.insert(m.p.key).second) {
        out.eval.push_back(std::move(m.p));
        misses = 0;
      } else if (++misses > kMaxDemoMisses) {
        throw UsageError(strformat("--eval %lld: the demo's problem families gave only %zu distinct eval problems "
                                   "(no new one in %lld draws); ask for fewer",
                                   (long long)o.eval_prompts, out.eval.size(), (long long)kMaxDemoMisses));
      }
    }
  }
  {  // train: any family, no eval key, no repeated question text
    Rng r(rng_stream_key(o.seed, "demo/train"));
    std::unordered_set<std::string> seen;
    int64_t misses = 0;
    while (int64_t(out.train.size()) < o.train_prompts) {
      Made m = make_problem(r, int(r.in(0, kNumFamilies - 1)));
      if (eval_keys.count(m.p.key) || !seen.insert(m.p.question).second) {
        if (++misses > kMaxDemoMisses)
          throw UsageError(strformat("--train %lld: the demo's problem families gave only %zu distinct train "
                                     "problems besides the eval set (no new one in %lld draws); ask for fewer",
                                     (long long)o.train_prompts, out.train.size(), (long long)kMaxDemoMisses));
        continue;
      }
      misses = 0;
      out.train.push_back(std::move(m.p));
    }
  }
  CorpusWriter corpus(o.seed, o.copy_forcing ? kCopyForcingMix : kDefaultMix, eval_keys, out);
  out.corpus.reserve(size_t(o.corpus_bytes) + 1024);
  while (int64_t(out.corpus.size()) < o.corpus_bytes) corpus.document();
  return out;
}

static void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw RuntimeError(strformat("%s: cannot write", path.string().c_str()));
}

static std::string problems_jsonl(const std::vector<DemoProblem>& ps) {
  std::string s;
  for (const auto& p : ps) {
    nlohmann::ordered_json j;
    j["prompt"] = p.question;
    j["answer"] = num(p.answer);
    j["steps"] = p.steps;
    j["key"] = p.key;
    s += j.dump() + "\n";
  }
  return s;
}

void write_demo_data(const DemoData& data, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create the directory: %s", dir.c_str(), ec.message().c_str()));
  const std::filesystem::path d(dir);
  write_text(d / "pretrain.txt", data.corpus);
  write_text(d / "train.jsonl", problems_jsonl(data.train));
  write_text(d / "eval.jsonl", problems_jsonl(data.eval));
}

std::vector<std::string> find_forbidden_text(const std::string& corpus, const std::vector<std::string>& templates,
                                             size_t window) {
  ZT_ASSERT(window >= 4);
  std::vector<std::string> found;
  for (const char* tag : {"<think", "</think", "<answer", "</answer"}) {
    const size_t at = corpus.find(tag);
    if (at != std::string::npos) found.push_back(strformat("tag '%s' at byte %zu", tag, at));
  }
  // Every `window`-byte piece of each template's literal text (between {fields}).
  std::unordered_set<std::string_view> pieces;
  for (const std::string& tmpl : templates) {
    const std::string_view t(tmpl);
    size_t start = 0;
    while (start <= t.size()) {
      size_t end = t.find('{', start);
      if (end == std::string::npos) end = t.size();
      for (size_t i = start; i + window <= end; ++i) pieces.insert(t.substr(i, window));
      const size_t close = t.find('}', end);
      if (end == t.size() || close == std::string::npos) break;
      start = close + 1;
    }
  }
  if (pieces.empty() || corpus.size() < window) return found;
  std::string_view c(corpus);
  for (size_t i = 0; i + window <= c.size() && found.size() < 20; ++i) {
    if (!pieces.count(c.substr(i, window))) continue;
    found.push_back(strformat("template text '%s' at byte %zu", std::string(c.substr(i, window)).c_str(), i));
    i += window - 1;
  }
  return found;
}

}  // namespace zeroth
