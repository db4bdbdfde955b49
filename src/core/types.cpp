#include "crowdgate/types.hpp"

#include <algorithm>

namespace crowdgate {

namespace {

constexpr size_t kMaxNameLength = 128;

bool IsWorkerNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '@' || c == '-';
}

// Quotes user text for an error message: control bytes, quotes and backslashes are escaped
// so a hostile name cannot forge log lines; very long text is shortened.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 160;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

std::string JoinProviders() {
  std::string out;
  for (const auto& p : KnownProviders()) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

Status ValidateWorkerName(std::string_view text, std::string_view name) {
  const std::string prefix = "worker " + Quote(text) + ": ";
  if (name.empty()) return Status::InvalidArgument(prefix + "name is empty");
  if (name.size() > kMaxNameLength) {
    return Status::InvalidArgument(prefix + "name is " + std::to_string(name.size()) +
                                   " characters long; the limit is 128");
  }
  if (!std::all_of(name.begin(), name.end(), IsWorkerNameChar)) {
    return Status::InvalidArgument(prefix + "name may contain only letters, digits and _ . @ -");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& KnownProviders() {
  static const std::vector<std::string> kProviders = {"local", "prolific", "mturk", "mturk_sandbox"};
  return kProviders;
}

bool IsKnownProvider(std::string_view provider) {
  const auto& known = KnownProviders();
  return std::find(known.begin(), known.end(), provider) != known.end();
}

Result<WorkerRef> ParseWorkerRef(std::string_view text) {
  WorkerRef ref;
  std::string_view name = text;
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    const std::string_view provider = text.substr(0, colon);
    if (!IsKnownProvider(provider)) {
      return Status::InvalidArgument("worker " + Quote(text) + ": unknown provider " + Quote(provider) +
                                     " (known: " + JoinProviders() + ")");
    }
    ref.provider = std::string(provider);
    name = text.substr(colon + 1);
  }
  CG_RETURN_IF_ERROR(ValidateWorkerName(text, name));
  ref.name = std::string(name);
  return ref;
}

Status ValidateQualificationName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("qualification name is empty");
  const std::string prefix = "qualification name " + Quote(name) + ": ";
  // Characters, not bytes: UTF-8 continuation bytes do not count.
  const auto length = std::count_if(name.begin(), name.end(), [](char c) { return (c & 0xC0) != 0x80; });
  if (length > static_cast<std::ptrdiff_t>(kMaxNameLength)) {
    return Status::InvalidArgument(prefix + "is " + std::to_string(length) + " characters long; the limit is 128");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument(prefix + "contains a control character");
  }
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  if (is_space(name.front()) || is_space(name.back())) {
    return Status::InvalidArgument(prefix + "has leading or trailing whitespace");
  }
  return Status::Ok();
}

std::string_view AuditKindName(AuditEntry::Kind kind) {
  switch (kind) {
    case AuditEntry::Kind::kGrant:
      return "grant";
    case AuditEntry::Kind::kChange:
      return "change";
    case AuditEntry::Kind::kRevoke:
      return "revoke";
    case AuditEntry::Kind::kQualificationDeleted:
      return "qualification_deleted";
  }
  return "unknown";
}

bool ProviderSyncsGrants(std::string_view provider) { return provider == "prolific"; }
bool ProviderReviews(std::string_view provider) { return provider == "prolific"; }

}  // namespace crowdgate
