// The statuses and kinds of runs, units and agents, each with its one table of words.
//
// Contract: the words are what the stores keep in their status and kind columns and what the
// JSON, HTTP and CLI outputs print; they never change (databases written by earlier versions
// must load). ToString gives the word of a value; Parse... gives the value of a word, or
// nullopt for a word that is not in the table. Code compares the enums, never the words.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace crowdgate {

// A run takes work while open; CloseRun closes it for good.
enum class RunStatus { kOpen, kClosed };

// What an agent (and the unit it holds) is. A unit is never kOnboarding; an agent of kind
// kUnit whose eval_set is kScreeningEvalSet is a real unit deciding a screening, and shows as
// kScreening in exports and agent lists.
enum class AgentKind { kUnit, kGold, kScreening, kOnboarding };

enum class UnitStatus { kLaunched, kAssigned, kCompleted, kAccepted, kRejected, kSoftRejected, kExpired };

enum class AgentStatus {
  kInTask,      // holds a unit (of any kind but onboarding)
  kOnboarding,  // doing the onboarding
  kCompleted,   // submitted a unit
  kPassed,      // onboarding passed
  kFailed,      // onboarding failed
  kReturned,    // the worker (or their provider) gave it back
  kTimeout,     // the lease ended
  kApproved,    // review: its unit was accepted
  kRejected,
  kSoftRejected,
};

// AgentRecord::eval_set of a real unit whose submission decides the worker's screening.
inline constexpr std::string_view kScreeningEvalSet = "screening";

std::string ToString(RunStatus status);
std::string ToString(AgentKind kind);
std::string ToString(UnitStatus status);
std::string ToString(AgentStatus status);

std::optional<RunStatus> ParseRunStatus(std::string_view word);
std::optional<AgentKind> ParseAgentKind(std::string_view word);
std::optional<UnitStatus> ParseUnitStatus(std::string_view word);
std::optional<AgentStatus> ParseAgentStatus(std::string_view word);

// JSON holds the word, never the enum's number (nlohmann would otherwise write an integer).
void to_json(nlohmann::json& j, RunStatus status);
void to_json(nlohmann::json& j, AgentKind kind);
void to_json(nlohmann::json& j, UnitStatus status);
void to_json(nlohmann::json& j, AgentStatus status);

// Streams print the word too (logs, test failure messages).
std::ostream& operator<<(std::ostream& os, RunStatus status);
std::ostream& operator<<(std::ostream& os, AgentKind kind);
std::ostream& operator<<(std::ostream& os, UnitStatus status);
std::ostream& operator<<(std::ostream& os, AgentStatus status);

// An agent still working (kInTask or kOnboarding).
bool IsOpen(AgentStatus status);
// An agent whose submission is in (completed, passed, failed, or reviewed since).
bool IsSubmitted(AgentStatus status);
// The status a review gives the agent that submitted a unit now in `unit_status` (kAccepted ->
// kApproved; kRejected, kSoftRejected alike); nullopt for a status a review does not set.
std::optional<AgentStatus> AgentStatusAfterReview(UnitStatus unit_status);

}  // namespace crowdgate
