// Dense ids for strings, in order of first appearance, for reading millions of CSV rows.
//
// An open-addressing table whose slots carry the hash and, for keys up to 16 bytes, the key
// itself: a lookup usually touches one cache line, where std::unordered_map chases a node and
// then the key's text in the file (three cache misses on shuffled input).
// The interned views must outlive the Interner.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace crowdgate {

class Interner {
 public:
  Interner() { Rehash(64); }

  int32_t Intern(std::string_view s) {
    const uint64_t h = Hash(s);
    size_t i = h & mask_;
    while (true) {
      Slot& slot = slots_[i];
      if (slot.id < 0) break;
      if (Matches(slot, h, s)) return slot.id;
      i = (i + 1) & mask_;
    }
    const auto id = static_cast<int32_t>(names_.size());
    names_.push_back(s);
    Place(slots_[i], h, s, id);
    if (names_.size() * 2 > slots_.size()) Rehash(slots_.size() * 2);
    return id;
  }

  // -1 if never interned.
  int32_t Find(std::string_view s) const {
    const uint64_t h = Hash(s);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (Matches(slot, h, s)) return slot.id;
    }
  }

  size_t size() const { return names_.size(); }
  std::string_view name(int32_t id) const { return names_[static_cast<size_t>(id)]; }

 private:
  static constexpr size_t kInline = 16;
  struct Slot {
    uint64_t hash = 0;
    int32_t id = -1;  // -1 = empty
    uint32_t size = 0;
    char text[kInline];  // the key when size <= kInline
  };

  // FNV-1a with a final avalanche (the low bits pick the slot).
  static uint64_t Hash(std::string_view s) {
    uint64_t h = 1469598103934665603ULL;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
  }

  bool Matches(const Slot& slot, uint64_t h, std::string_view s) const {
    if (slot.hash != h || slot.size != s.size()) return false;
    if (s.size() <= kInline) return std::memcmp(slot.text, s.data(), s.size()) == 0;
    return names_[static_cast<size_t>(slot.id)] == s;
  }

  static void Place(Slot& slot, uint64_t h, std::string_view s, int32_t id) {
    slot.hash = h;
    slot.id = id;
    slot.size = static_cast<uint32_t>(s.size());
    if (s.size() <= kInline) std::memcpy(slot.text, s.data(), s.size());
  }

  void Rehash(size_t n) {
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (size_t id = 0; id < names_.size(); ++id) {
      const std::string_view s = names_[id];
      const uint64_t h = Hash(s);
      size_t i = h & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      Place(slots_[i], h, s, static_cast<int32_t>(id));
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<std::string_view> names_;
};

}  // namespace crowdgate
