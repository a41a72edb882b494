// Stop rules of one sequence (rollout.h: StopChecker) and the finish reason names.
// Must not: sample or touch the model.
#include <algorithm>

#include "zeroth/error.h"
#include "zeroth/rollout.h"

namespace zeroth {

const char* finish_reason_name(FinishReason r) {
  return r == FinishReason::kStop ? "stop" : "length";
}

StopChecker::StopChecker(const StopParams& params, const Tokenizer* tokenizer) : params_(params) {
  ZT_ASSERT(tokenizer != nullptr || params_.stop_strings.empty(),
            "StopChecker: stop strings need a tokenizer");
  ZT_ASSERT(params_.max_new_tokens > 0, "StopChecker: max_new_tokens %lld must be > 0",
            (long long)params_.max_new_tokens);
  if (tokenizer)
    decoder_ = std::make_unique<TokenStreamDecoder>(*tokenizer, params_.skip_special_tokens);
  for (const std::string& s : params_.stop_strings) {
    ZT_ASSERT(!s.empty(), "StopChecker: empty stop string");
    max_stop_len_ = std::max(max_stop_len_, s.size());
  }
}

void StopChecker::finish(FinishReason r) {
  finished_ = true;
  reason_ = r;
}

void StopChecker::finish_length() {
  if (finished_) return;
  if (decoder_) text_ += decoder_->finish();
  finish(FinishReason::kLength);
}

bool StopChecker::push(int32_t id) {
  ZT_ASSERT(!finished_, "StopChecker: push after the sequence finished");
  ++n_;
  const size_t before = text_.size();
  if (decoder_) text_ += decoder_->push(id);
  if (std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), id) !=
      params_.stop_token_ids.end()) {
    if (decoder_) text_ += decoder_->finish();
    finish(FinishReason::kStop);
    return true;
  }
  if (max_stop_len_ > 0 && text_.size() > before) {
    // Only a match that ends in the new piece is new: start max_len - 1 bytes earlier.
    const size_t from = before >= max_stop_len_ - 1 ? before - (max_stop_len_ - 1) : 0;
    size_t best = std::string::npos;
    const std::string* hit = nullptr;
    for (const std::string& s : params_.stop_strings) {
      const size_t at = text_.find(s, from);
      if (at == std::string::npos) continue;
      if (at < best || (at == best && s.size() > hit->size())) {
        best = at;
        hit = &s;
      }
    }
    if (hit) {
      matched_ = *hit;
      text_.resize(params_.keep_stop_string ? best + hit->size() : best);
      finish(FinishReason::kStop);
      return true;
    }
  }
  if (n_ >= params_.max_new_tokens) {
    finish_length();
    return true;
  }
  return false;
}

}  // namespace zeroth
