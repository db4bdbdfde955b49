#include "cli/aggregate_input.hpp"

namespace crowdgate::cli {

namespace {

std::string JsonString(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

}  // namespace

Result<std::unique_ptr<LoadedJudgments>> LoadCsvJudgments(const std::string& path) {
  auto l = std::make_unique<LoadedJudgments>();
  CG_ASSIGN_OR_RETURN(CsvFile file, CsvFile::Open(path));
  auto csv = std::make_shared<CsvFile>(std::move(file));
  l->backing = csv;  // the interned names are views into the file
  // Rows usually come grouped by item; remembering the last item saves most lookups.
  int32_t last_item = -1;
  std::string_view last_name;
  Judgments& j = l->judgments;
  CG_RETURN_IF_ERROR(csv->ForEachRow({"item", "worker", "label"}, [&](int64_t, const std::string_view* f) {
    if (last_item < 0 || f[0] != last_name) {
      last_item = l->items.Intern(f[0]);
      last_name = f[0];
    }
    j.Add(last_item, l->workers.Intern(f[1]), l->labels.Intern(f[2]));
    return Status::Ok();
  }));
  for (size_t k = 0; k < l->labels.size(); ++k) {
    l->label_text.emplace_back(l->labels.name(static_cast<int32_t>(k)));
    l->label_json.push_back(JsonString(l->label_text.back()));
  }
  l->output_items.resize(l->items.size());
  for (size_t i = 0; i < l->output_items.size(); ++i) l->output_items[i] = static_cast<int32_t>(i);
  l->Finish();
  return l;
}

}  // namespace crowdgate::cli
