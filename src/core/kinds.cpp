#include "crowdgate/kinds.hpp"

#include <array>
#include <ostream>
#include <utility>

#include <nlohmann/json.hpp>

namespace crowdgate {

namespace {

// One table per enum: every value once, with its word. Adding a value means adding its row here.
template <typename E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

constexpr NameTable<RunStatus, 2> kRunStatusNames{{
    {RunStatus::kOpen, "open"},
    {RunStatus::kClosed, "closed"},
}};

constexpr NameTable<AgentKind, 4> kAgentKindNames{{
    {AgentKind::kUnit, "unit"},
    {AgentKind::kGold, "gold"},
    {AgentKind::kScreening, "screening"},
    {AgentKind::kOnboarding, "onboarding"},
}};

constexpr NameTable<UnitStatus, 7> kUnitStatusNames{{
    {UnitStatus::kLaunched, "launched"},
    {UnitStatus::kAssigned, "assigned"},
    {UnitStatus::kCompleted, "completed"},
    {UnitStatus::kAccepted, "accepted"},
    {UnitStatus::kRejected, "rejected"},
    {UnitStatus::kSoftRejected, "soft_rejected"},
    {UnitStatus::kExpired, "expired"},
}};

constexpr NameTable<AgentStatus, 10> kAgentStatusNames{{
    {AgentStatus::kInTask, "in_task"},
    {AgentStatus::kOnboarding, "onboarding"},
    {AgentStatus::kCompleted, "completed"},
    {AgentStatus::kPassed, "passed"},
    {AgentStatus::kFailed, "failed"},
    {AgentStatus::kReturned, "returned"},
    {AgentStatus::kTimeout, "timeout"},
    {AgentStatus::kApproved, "approved"},
    {AgentStatus::kRejected, "rejected"},
    {AgentStatus::kSoftRejected, "soft_rejected"},
}};

template <typename E, size_t N>
std::string NameOf(const NameTable<E, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return std::string(name);
  }
  return "?";  // unreachable while every value has its row (the unit test checks that)
}

template <typename E, size_t N>
std::optional<E> ValueOf(const NameTable<E, N>& table, std::string_view word) {
  for (const auto& [v, name] : table) {
    if (name == word) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string ToString(RunStatus status) { return NameOf(kRunStatusNames, status); }
std::string ToString(AgentKind kind) { return NameOf(kAgentKindNames, kind); }
std::string ToString(UnitStatus status) { return NameOf(kUnitStatusNames, status); }
std::string ToString(AgentStatus status) { return NameOf(kAgentStatusNames, status); }

std::optional<RunStatus> ParseRunStatus(std::string_view word) { return ValueOf(kRunStatusNames, word); }
std::optional<AgentKind> ParseAgentKind(std::string_view word) { return ValueOf(kAgentKindNames, word); }
std::optional<UnitStatus> ParseUnitStatus(std::string_view word) { return ValueOf(kUnitStatusNames, word); }
std::optional<AgentStatus> ParseAgentStatus(std::string_view word) { return ValueOf(kAgentStatusNames, word); }

void to_json(nlohmann::json& j, RunStatus status) { j = ToString(status); }
void to_json(nlohmann::json& j, AgentKind kind) { j = ToString(kind); }
void to_json(nlohmann::json& j, UnitStatus status) { j = ToString(status); }
void to_json(nlohmann::json& j, AgentStatus status) { j = ToString(status); }

std::ostream& operator<<(std::ostream& os, RunStatus status) { return os << ToString(status); }
std::ostream& operator<<(std::ostream& os, AgentKind kind) { return os << ToString(kind); }
std::ostream& operator<<(std::ostream& os, UnitStatus status) { return os << ToString(status); }
std::ostream& operator<<(std::ostream& os, AgentStatus status) { return os << ToString(status); }

bool IsOpen(AgentStatus status) { return status == AgentStatus::kInTask || status == AgentStatus::kOnboarding; }

bool IsSubmitted(AgentStatus status) {
  switch (status) {
    case AgentStatus::kCompleted:
    case AgentStatus::kPassed:
    case AgentStatus::kFailed:
    case AgentStatus::kApproved:
    case AgentStatus::kRejected:
    case AgentStatus::kSoftRejected:
      return true;
    case AgentStatus::kInTask:
    case AgentStatus::kOnboarding:
    case AgentStatus::kReturned:
    case AgentStatus::kTimeout:
      return false;
  }
  return false;
}

std::optional<AgentStatus> AgentStatusAfterReview(UnitStatus unit_status) {
  switch (unit_status) {
    case UnitStatus::kAccepted:
      return AgentStatus::kApproved;
    case UnitStatus::kRejected:
      return AgentStatus::kRejected;
    case UnitStatus::kSoftRejected:
      return AgentStatus::kSoftRejected;
    default:
      return std::nullopt;
  }
}

}  // namespace crowdgate
