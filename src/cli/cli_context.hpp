// Shared state of one crowdgate invocation: global options, output helpers, and the
// action the parsed command will run.
#pragma once

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/engine.hpp"
#include "crowdgate/status.hpp"
#include "engine/engine_impl.hpp"

namespace crowdgate::cli {

struct CliContext {
  std::string db;          // --db, else $CROWDGATE_DB, else ./crowdgate.db
  bool json = false;       // --json: machine-readable output
  std::function<int()> action;  // set by the chosen command's callback

  // The database URI after applying the defaults.
  std::string ResolvedDb() const;
  // Opens the store named by ResolvedDb() and an engine over it. The concrete engine, so that the
  // commands that launch runs or read run configs get a RunDispatcher (NewRunDispatcher).
  Result<std::unique_ptr<EngineImpl>> OpenEngine() const;
};

// Prints "crowdgate: <message>" on stderr and returns the exit code for the status.
int Fail(const Status& status);
// Prints JSON (one document, pretty when stdout is a terminal) on stdout.
void PrintJson(const nlohmann::json& j);
// The actor recorded in the audit log for CLI changes: "cli:$USER".
std::string CliActor();
bool StderrIsTerminal();

// A left-aligned text table for human output.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A progress line on stderr ("\r label  512000/1000000  51%"), drawn only on a terminal
// and at most ten times a second.
class Progress {
 public:
  explicit Progress(std::string label);
  void Update(size_t done, size_t total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  int64_t last_draw_us_ = 0;
  bool drawn_ = false;
};

// Parses "30d", "12h", "90m", "45s", "2w" (relative to now) or an absolute date
// "2027-01-31" / "2027-01-31T12:00:00Z" into microseconds since the epoch.
Result<int64_t> ParseExpiry(const std::string& text, int64_t now_micros);

std::string FormatOptionalTime(const std::optional<int64_t>& t);

}  // namespace crowdgate::cli
