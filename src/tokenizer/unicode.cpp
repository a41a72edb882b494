// UTF-8 validation and lossy repair, the GPT-2 byte <-> unicode map, and NFC
// normalization (UAX #15: decompose, reorder, compose) over the generated tables in
// nfc_tables.cpp. Must not depend on any tokenizer state.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/nfc_tables.h"

namespace zeroth {
namespace tok {
namespace {

enum class SeqStatus { kValid, kInvalid, kIncomplete };

// Classifies the UTF-8 sequence starting at s[i]. On kValid, *len is its length; on
// kInvalid, *len is the length of the maximal invalid subpart (>= 1); on kIncomplete the
// input ended inside a sequence that is valid so far.
SeqStatus classify(std::string_view s, size_t i, size_t* len) {
  const uint8_t b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return SeqStatus::kValid;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len = 1;
    return SeqStatus::kInvalid;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *len = k;
      return SeqStatus::kIncomplete;
    }
    const uint8_t b = static_cast<uint8_t>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *len = k;
      return SeqStatus::kInvalid;
    }
  }
  *len = need;
  return SeqStatus::kValid;
}

struct NfcData {
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomp;
  std::unordered_map<uint64_t, uint32_t> comp;
};

const NfcData& nfc_data() {
  static const NfcData data = [] {
    NfcData d;
    d.decomp.reserve(kDecompositionCount);
    for (size_t i = 0; i < kDecompositionCount; ++i)
      d.decomp.emplace(kDecompositions[i].cp,
                       std::make_pair(kDecompositions[i].a, kDecompositions[i].b));
    d.comp.reserve(kCompositionCount);
    for (size_t i = 0; i < kCompositionCount; ++i)
      d.comp.emplace((uint64_t(kCompositions[i].a) << 32) | kCompositions[i].b,
                     kCompositions[i].composite);
    return d;
  }();
  return data;
}

uint8_t ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CccRange* end = kCccRanges + kCccRangeCount;
  const CccRange* it = std::upper_bound(kCccRanges, end, cp,
                                        [](uint32_t c, const CccRange& r) { return c < r.first; });
  if (it == kCccRanges) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

bool nfc_quick_check_yes(uint32_t cp) {
  if (cp < 0x300) return true;
  const QcRange* end = kNfcQcNotYes + kNfcQcNotYesCount;
  const QcRange* it = std::upper_bound(kNfcQcNotYes, end, cp,
                                       [](uint32_t c, const QcRange& r) { return c < r.first; });
  if (it != kNfcQcNotYes && cp <= (it - 1)->last) return false;
  return ccc(cp) == 0;
}

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr uint32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(uint32_t cp, const NfcData& d, std::vector<uint32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  auto it = d.decomp.find(cp);
  if (it == d.decomp.end()) {
    out->push_back(cp);
    return;
  }
  decompose(it->second.first, d, out);
  if (it->second.second != 0) decompose(it->second.second, d, out);
}

// Returns the primary composite of a + b, or 0.
uint32_t compose(uint32_t a, uint32_t b, const NfcData& d) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = d.comp.find((uint64_t(a) << 32) | b);
  return it == d.comp.end() ? 0 : it->second;
}

}  // namespace

size_t utf8_find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (classify(s, i, &len) != SeqStatus::kValid) return i;
    i += len;
  }
  return std::string_view::npos;
}

uint32_t utf8_next(std::string_view s, size_t* i) {
  const uint8_t b0 = static_cast<uint8_t>(s[*i]);
  if (b0 < 0x80) {
    *i += 1;
    return b0;
  }
  uint32_t cp;
  size_t n;
  if (b0 < 0xE0) {
    cp = b0 & 0x1F;
    n = 2;
  } else if (b0 < 0xF0) {
    cp = b0 & 0x0F;
    n = 3;
  } else {
    cp = b0 & 0x07;
    n = 4;
  }
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[*i + k]) & 0x3F);
  *i += n;
  return cp;
}

void utf8_append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t utf8_complete_prefix(std::string_view s) {
  // Only the last 3 bytes can start an incomplete sequence.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = from; i < s.size(); ++i) {
    size_t len;
    if (classify(s, i, &len) == SeqStatus::kIncomplete) {
      // A lead byte always starts a sequence in the lossy scan (it is never a valid
      // continuation byte), so classifying from here agrees with a scan from the start.
      return i;
    }
  }
  return s.size();
}

void utf8_append_lossy(std::string_view bytes, std::string* out) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len;
    const SeqStatus st = classify(bytes, i, &len);
    if (st == SeqStatus::kValid) {
      out->append(bytes.data() + i, len);
    } else {
      out->append(kReplacement, 3);
    }
    i += len;
  }
}

uint32_t byte_to_unicode(uint8_t b) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) ||
                             (c >= 0xAE && c <= 0xFF);
      t[c] = printable ? uint32_t(c) : 256 + n++;
    }
    return t;
  }();
  return table[b];
}

int unicode_to_byte(uint32_t cp) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_unicode(static_cast<uint8_t>(b))] = int16_t(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

void nfc_normalize(std::string_view s, std::string* out) {
  out->clear();
  bool quick_yes = true;
  for (size_t i = 0; i < s.size() && quick_yes;) {
    if (static_cast<uint8_t>(s[i]) < 0xCC) {  // below U+0300 (or a continuation byte)
      ++i;
      continue;
    }
    quick_yes = nfc_quick_check_yes(utf8_next(s, &i));
  }
  if (quick_yes) {
    out->assign(s.data(), s.size());
    return;
  }
  const NfcData& d = nfc_data();
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(utf8_next(s, &i), d, &cps);
  // Canonical ordering: stable sort each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](uint32_t a, uint32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> res;
  res.reserve(cps.size());
  size_t starter = std::string::npos;
  int last_class = -1;
  for (uint32_t cp : cps) {
    const int cc = ccc(cp);
    if (starter != std::string::npos && (last_class < cc || last_class == 0)) {
      const uint32_t c = compose(res[starter], cp, d);
      if (c != 0) {
        res[starter] = c;
        continue;
      }
    }
    if (cc == 0) starter = res.size();
    last_class = cc;
    res.push_back(cp);
  }
  out->reserve(s.size());
  for (uint32_t cp : res) utf8_append(cp, out);
}

}  // namespace tok
}  // namespace zeroth
