// Status and kind words as the backends read them back from their columns (crowdgate/kinds.hpp
// holds the tables). A word outside the table can only come from a database edited by hand; it
// is an Internal error naming the column, never a silent default. Internal to src/store.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "crowdgate/kinds.hpp"
#include "crowdgate/status.hpp"

namespace crowdgate::store_words {

template <typename E>
Result<E> FromColumn(std::optional<E> (*parse)(std::string_view), std::string_view column, const std::string& word) {
  std::optional<E> value = parse(word);
  if (!value) return Status::Internal("unknown word '" + word + "' in " + std::string(column));
  return *value;
}

// The same for the PostgreSQL backend, whose row readers run inside a transaction body that
// turns exceptions into a Status.
template <typename E>
E FromColumnOrThrow(std::optional<E> (*parse)(std::string_view), std::string_view column, const std::string& word) {
  Result<E> value = FromColumn(parse, column, word);
  if (!value.ok()) throw std::runtime_error(value.status().message());
  return *value;
}

}  // namespace crowdgate::store_words
