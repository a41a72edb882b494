// UTF-8 and Unicode helpers for the tokenizer: UTF-8 validation and lossy repair,
// the GPT-2 byte <-> unicode map, and NFC normalization. Pure functions on strings;
// nothing here knows about vocabularies or token ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zeroth {
namespace tok {

// Returns the byte offset of the first invalid UTF-8 sequence, or npos when `s` is valid.
size_t utf8_find_invalid(std::string_view s);

// Decodes one code point at s[i] (s must be valid UTF-8); advances i.
uint32_t utf8_next(std::string_view s, size_t* i);
void utf8_append(uint32_t cp, std::string* out);

// Number of leading bytes of `s` that form complete UTF-8 characters or invalid
// sequences that can never become valid; the rest (at most 3 bytes) is a valid
// prefix of a character that more bytes could complete.
size_t utf8_complete_prefix(std::string_view s);

// Appends `bytes` to `out`, replacing each maximal invalid subpart by U+FFFD
// (the Unicode / WHATWG practice that Rust's from_utf8_lossy and TextDecoder follow).
void utf8_append_lossy(std::string_view bytes, std::string* out);

// GPT-2 byte-level map: byte -> printable code point, and its inverse (-1 if the code
// point is not in the map).
uint32_t byte_to_unicode(uint8_t b);
int unicode_to_byte(uint32_t cp);

// NFC normalization of valid UTF-8 `s` into `out` (replaced).
void nfc_normalize(std::string_view s, std::string* out);

}  // namespace tok
}  // namespace zeroth
