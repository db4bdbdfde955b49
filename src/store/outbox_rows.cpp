// Store::CheckOutboxUpdates: what every backend refuses in UpdateOutboxRows (see outbox_rows.hpp).
#include <algorithm>
#include <string>
#include <vector>

#include "crowdgate/store.hpp"
#include "store/outbox_rows.hpp"

namespace crowdgate {

Status Store::CheckOutboxUpdates(const std::vector<OutboxRow>& rows) {
  std::vector<int64_t> ids;
  ids.reserve(rows.size());
  for (const OutboxRow& row : rows) {
    if (!store_outbox::IsOutboxState(row.state)) return store_outbox::BadState(row.state);
    ids.push_back(row.id);
  }
  std::sort(ids.begin(), ids.end());
  auto dup = std::adjacent_find(ids.begin(), ids.end());
  if (dup != ids.end()) {
    return Status::InvalidArgument("outbox row " + std::to_string(*dup) + " is given twice in one update");
  }
  return Status::Ok();
}

}  // namespace crowdgate
