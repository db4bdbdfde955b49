#include "providers/local/worker_link.hpp"

#include <charconv>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/secure_compare.hpp"

namespace crowdgate {

namespace {

std::string Mac(const std::string& secret, const std::string& run_id, const WorkerRef& worker, int64_t expires_at_s) {
  const std::string message =
      "crowdgate-link\n" + run_id + "\n" + worker.ToString() + "\n" + std::to_string(expires_at_s);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

std::string SignWorkerLink(const std::string& secret, const std::string& run_id, const WorkerRef& worker,
                           int64_t expires_at_s) {
  return std::to_string(expires_at_s) + "." + Mac(secret, run_id, worker, expires_at_s);
}

Status VerifyWorkerLink(const std::string& secret, const std::string& run_id, const WorkerRef& worker,
                        const std::string& sig, int64_t now_s) {
  if (sig.empty()) {
    return Status::Unauthenticated("this link is not signed: ask the requester for your link "
                                   "(crowdgate worker link " + worker.name + " " + run_id + ")");
  }
  const size_t dot = sig.find('.');
  int64_t expires = -1;
  if (dot == std::string::npos || dot == 0) return Status::Unauthenticated("malformed link signature");
  auto [end, ec] = std::from_chars(sig.data(), sig.data() + dot, expires);
  if (ec != std::errc() || end != sig.data() + dot || expires < 0) {
    return Status::Unauthenticated("malformed link signature");
  }
  if (!ConstantTimeEqual(sig.substr(dot + 1), Mac(secret, run_id, worker, expires))) {
    return Status::Unauthenticated("this link's signature is not valid for worker " + worker.name + " on run " +
                                   run_id);
  }
  if (expires != 0 && now_s >= expires) {
    return Status::Unauthenticated("this link has expired: ask the requester for a new one");
  }
  return Status::Ok();
}

std::string WorkerLinkPath(const std::string& run_id, const WorkerRef& worker, const std::string& sig) {
  return "/runs/" + run_id + "?worker=" + worker.name + "&sig=" + sig;
}

}  // namespace crowdgate
