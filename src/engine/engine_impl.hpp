// EngineImpl: the Engine interface over an EngineCore. Internal; see engine.hpp.
#pragma once

#include <memory>

#include "crowdgate/engine.hpp"
#include "engine/engine_core.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate {

struct CompiledRequirements {
  std::vector<CompiledRequirement> reqs;
  std::vector<std::string> names;  // qualification name per source index
};

class EngineImpl : public Engine {
 public:
  explicit EngineImpl(std::shared_ptr<EngineCore> core) : core_(std::move(core)) {}

  Result<Qualification> CreateQualification(const std::string& name, const std::string& description) override;
  Result<std::vector<QualificationSummary>> ListQualifications() override;
  Result<Qualification> GetQualification(const std::string& name) override;
  Result<std::vector<crowdgate::Grant>> ListGrants(const std::string& qualification) override;
  Status DeleteQualification(const std::string& name) override;
  Result<AuditEntry> Grant(const GrantRequest& request) override;
  Result<bool> Revoke(const std::string& qualification, const std::string& worker, const std::string& reason,
                      bool provider_sync = true) override;
  Result<ImportSummary> Import(const std::string& qualification, const std::vector<ImportRow>& rows,
                               const std::string& reason,
                               const std::function<void(size_t done, size_t total)>& progress) override;
  Result<BulkSummary> ApplyBulk(const BulkChange& change, bool dry_run,
                                const std::function<void(size_t done, size_t total)>& progress) override;
  Result<std::vector<AuditEntry>> History(const std::optional<std::string>& qualification,
                                          const std::optional<std::string>& worker) override;
  Result<int64_t> RevokeExpiredGrants() override;
  Result<WorkerInfo> ShowWorker(const std::string& worker) override;
  Status ResetOnboarding(const std::string& qualification, const std::string& worker) override;
  Result<std::shared_ptr<const CompiledRequirements>> Compile(const std::vector<Requirement>& reqs) override;
  Result<EligibilityVerdict> Check(const std::string& worker, const CompiledRequirements& reqs) override;
  Status CheckStore() override;
  Result<std::unique_ptr<Dispatcher>> NewDispatcher() override;
  // The same dispatcher as NewDispatcher(), with the calls that take the internal run config
  // (launch, page rendering): for crowdgate's own CLI, server and benchmarks.
  Result<std::unique_ptr<RunDispatcher>> NewRunDispatcher();

  EngineCore& core() { return *core_; }
  std::shared_ptr<EngineCore> shared_core() { return core_; }

  // Compiles with the core lock already held.
  Result<std::shared_ptr<const CompiledRequirements>> CompileLocked(const std::vector<Requirement>& reqs);

 private:
  std::shared_ptr<EngineCore> core_;
};

// Engine::Open, keeping the concrete type: for internal callers that read EngineImpl's own figures
// (the benchmarks' index size) without casting an Engine.
Result<std::unique_ptr<EngineImpl>> OpenEngineImpl(std::unique_ptr<Store> store, EngineOptions options);

}  // namespace crowdgate
