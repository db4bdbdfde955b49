#include "engine/run_judgments.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/run_config.hpp"

namespace crowdgate {

namespace {

bool IsLabel(const nlohmann::json& v) { return v.is_string() || v.is_number() || v.is_boolean(); }

}  // namespace

void LoadedJudgments::Finish() {
  judgments.num_items = static_cast<int32_t>(items.size());
  judgments.num_workers = static_cast<int32_t>(workers.size());
  judgments.num_labels = static_cast<int32_t>(labels.size());
  if (!known.empty()) known.resize(items.size(), -1);
}

Result<std::unique_ptr<LoadedJudgments>> LoadRunJudgments(const std::vector<ExportRow>& rows, const RunConfig& config,
                                                          const std::string& field) {
  auto l = std::make_unique<LoadedJudgments>();
  l->items_are_numbers = true;
  auto counts = [](const ExportRow& r) {
    return r.submitted_at.has_value() && r.status != AgentStatus::kRejected && !r.data.is_null();
  };
  auto where = [](const ExportRow& r) {
    return "unit " + (r.unit_id ? std::to_string(*r.unit_id) : std::string("-")) + " (agent " + r.agent_id + ")";
  };

  l->field = field;
  if (l->field.empty()) {
    std::set<std::string> keys;
    for (const auto& r : rows) {
      if (r.kind != AgentKind::kUnit || !counts(r) || !r.data.is_object()) continue;
      for (const auto& [k, v] : r.data.items()) keys.insert(k);
    }
    if (keys.size() > 1) {
      std::string names;
      for (const auto& k : keys) names += (names.empty() ? "" : ", ") + k;
      return Status::InvalidArgument("the answers have several fields (" + names + "): choose one with --field");
    }
    if (!keys.empty()) l->field = *keys.begin();
  }

  auto label_of = [&](const nlohmann::json& v) {
    std::string key = v.dump();
    const int32_t known = l->labels.Find(key);
    if (known >= 0) return known;
    l->label_text.push_back(v.is_string() ? v.get<std::string>() : key);
    l->label_json.push_back(key);
    l->strings.push_back(std::move(key));
    return l->labels.Intern(l->strings.back());
  };
  auto intern = [&](Interner& in, std::string name) {
    const int32_t id = in.Find(name);
    if (id >= 0) return id;
    l->strings.push_back(std::move(name));
    return in.Intern(l->strings.back());
  };

  std::vector<std::pair<int64_t, int32_t>> real_items;  // (item index, id)
  const auto& golds = config.blueprint.gold_items;
  for (const auto& r : rows) {
    if ((r.kind != AgentKind::kUnit && r.kind != AgentKind::kGold) || !counts(r)) continue;
    if (!r.data.is_object() || !r.data.contains(l->field)) {
      return Status::InvalidArgument(where(r) + ": the answer has no field \"" + l->field + "\"");
    }
    const nlohmann::json& value = r.data[l->field];
    if (!IsLabel(value)) {
      return Status::InvalidArgument(where(r) + ": field \"" + l->field +
                                     "\" is not a single label (a string, number or boolean): " + value.dump());
    }
    int32_t item = -1;
    if (r.kind == AgentKind::kGold) {
      // A gold counts only when its answer gives the field a label to compare with.
      const bool usable = r.item >= 0 && static_cast<size_t>(r.item) < golds.size() &&
                          golds[static_cast<size_t>(r.item)].answer.contains(l->field) &&
                          IsLabel(golds[static_cast<size_t>(r.item)].answer[l->field]);
      if (!usable) {
        ++l->golds_skipped;
        continue;
      }
      item = intern(l->items, "gold:" + std::to_string(r.item));
      const int32_t truth = label_of(golds[static_cast<size_t>(r.item)].answer[l->field]);
      if (l->known.size() <= static_cast<size_t>(item)) l->known.resize(static_cast<size_t>(item) + 1, -1);
      l->known[static_cast<size_t>(item)] = truth;
      ++l->golds_used;
    } else {
      const size_t before = l->items.size();
      item = intern(l->items, std::to_string(r.item));
      if (l->items.size() > before) real_items.emplace_back(r.item, item);
    }
    l->judgments.Add(item, intern(l->workers, r.worker), label_of(value));
  }
  std::sort(real_items.begin(), real_items.end());
  for (const auto& [index, id] : real_items) l->output_items.push_back(id);
  l->Finish();
  return l;
}

Result<AggregatedRun> AggregateRun(RunDispatcher& dispatcher, const std::string& run_id, AggregationMethod method,
                                   const std::string& field) {
  AggregatedRun out;
  CG_ASSIGN_OR_RETURN(out.rows, dispatcher.Export(run_id));
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const RunView> view, dispatcher.RunViewOf(run_id));
  CG_ASSIGN_OR_RETURN(out.judgments, LoadRunJudgments(out.rows, *view->config, field));
  AggregateOptions options;
  options.method = method;
  options.known = out.judgments->known;
  CG_ASSIGN_OR_RETURN(out.result, Aggregate(out.judgments->judgments, options));
  return out;
}

nlohmann::json ItemLabelJson(const LoadedJudgments& l, const AggregateResult& result, int32_t id) {
  const ItemLabel& it = result.items[static_cast<size_t>(id)];
  return {{"item", std::stoll(std::string(l.items.name(id)))},
          {"label", it.label < 0 ? nlohmann::json(nullptr)
                                 : nlohmann::json::parse(l.label_json[static_cast<size_t>(it.label)])},
          {"confidence", it.confidence},
          {"labels", it.labels}};
}

void AgreementWithAggregate(const LoadedJudgments& l, const std::vector<ItemLabel>& items,
                            std::vector<double>* agreement, std::vector<int32_t>* compared) {
  std::vector<char> is_output(l.items.size(), 0);
  for (const int32_t id : l.output_items) is_output[static_cast<size_t>(id)] = 1;
  std::vector<int32_t> agreed(l.workers.size(), 0);
  compared->assign(l.workers.size(), 0);
  const Judgments& j = l.judgments;
  for (size_t k = 0; k < j.size(); ++k) {
    const auto item = static_cast<size_t>(j.item[k]);
    if (!is_output[item] || items[item].label < 0) continue;
    const auto worker = static_cast<size_t>(j.worker[k]);
    ++(*compared)[worker];
    if (items[item].label == j.label[k]) ++agreed[worker];
  }
  agreement->assign(l.workers.size(), NAN);
  for (size_t w = 0; w < agreed.size(); ++w) {
    if ((*compared)[w] > 0) (*agreement)[w] = static_cast<double>(agreed[w]) / (*compared)[w];
  }
}

}  // namespace crowdgate
