// Helpers for engine tests: an engine over SQLite (in memory or on a temp file) with a
// fake clock. The concrete EngineImpl, so that tests can make a RunDispatcher (NewRunDispatcher).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "crowdgate/engine.hpp"
#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"

namespace crowdgate::testing {

inline std::unique_ptr<EngineImpl> OpenTestEngine(Env* env, const std::string& uri = ":memory:",
                                              const std::string& actor = "test") {
  auto store = Store::Open(uri, env);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  EngineOptions options;
  options.env = env;
  options.actor = actor;
  auto engine = OpenEngineImpl(std::move(store).value(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return std::move(engine).value();
}

// (Re)opens `engine` over `uri` and `dispatcher` over it, as a restarted server would: the old
// dispatcher is closed before the old engine it uses.
inline void OpenTestDispatcher(Env* env, const std::string& uri, std::unique_ptr<EngineImpl>& engine,
                               std::unique_ptr<RunDispatcher>& dispatcher) {
  dispatcher.reset();
  engine.reset();
  engine = OpenTestEngine(env, uri);
  auto d = engine->NewRunDispatcher();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  dispatcher = std::move(d).value();
}

// A fresh temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "crowdgate-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace crowdgate::testing
