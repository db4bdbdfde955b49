// `crowdgate aggregate RUN|--input FILE.csv`: one label per item from many workers' labels.
//
// Output: one row per item (JSONL {"item", "label", "confidence", "labels"} or CSV), or with
// --workers one row per worker ({"worker", "accuracy", "labels"}), on stdout or --out. A summary
// goes to stderr; with the global --json it is a JSON object on stdout instead, and rows are
// written only to --out.
#include <charconv>
#include <cmath>
#include <optional>
#include <chrono>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/aggregate_input.hpp"
#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "core/aggregation.hpp"
#include "core/run_config.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate::cli {

namespace {

struct AggregateArgs {
  std::string run;
  std::string input;
  std::string method = "dawid-skene";
  std::string field;
  std::string gold;
  bool workers = false;
  std::string out;
  std::string format = "jsonl";
};

// Buffered writes to stdout or a file.
class Writer {
 public:
  explicit Writer(FILE* f) : f_(f) { buf_.reserve(kFlushAt + 4096); }
  std::string& buf() { return buf_; }
  void MaybeFlush() {
    if (buf_.size() >= kFlushAt) Flush();
  }
  void Flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) failed_ = true;
    buf_.clear();
  }
  bool Close() {
    Flush();
    return std::fflush(f_) == 0 && !failed_;
  }

 private:
  static constexpr size_t kFlushAt = 1 << 20;
  FILE* f_;
  std::string buf_;
  bool failed_ = false;
};

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void AppendCsvField(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += s;
    return;
  }
  out += '"';
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void AppendNumber(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 6);
  out.append(buf, end);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

nlohmann::json JsonNumberOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

void WriteItems(Writer& w, const LoadedJudgments& l, const AggregateResult& r, bool csv) {
  std::string& out = w.buf();
  if (csv) out += "item,label,confidence,labels\n";
  for (const int32_t id : l.output_items) {
    const ItemLabel& item = r.items[static_cast<size_t>(id)];
    const std::string_view name = l.items.name(id);
    if (csv) {
      AppendCsvField(out, name);
      out += ',';
      if (item.label >= 0) AppendCsvField(out, l.label_text[static_cast<size_t>(item.label)]);
      out += ',';
    } else {
      out += "{\"item\": ";
      if (l.items_are_numbers) {
        out += name;
      } else {
        AppendJsonString(out, name);
      }
      out += ", \"label\": ";
      out += item.label >= 0 ? std::string_view(l.label_json[static_cast<size_t>(item.label)]) : "null";
      out += ", \"confidence\": ";
    }
    AppendNumber(out, item.confidence);
    out += csv ? "," : ", \"labels\": ";
    AppendInt(out, item.labels);
    out += csv ? "\n" : "}\n";
    w.MaybeFlush();
  }
}

void WriteWorkers(Writer& w, const LoadedJudgments& l, const AggregateResult& r, bool csv) {
  std::string& out = w.buf();
  if (csv) out += "worker,accuracy,labels\n";
  for (int32_t id = 0; id < static_cast<int32_t>(l.workers.size()); ++id) {
    const double accuracy = r.worker_accuracy[static_cast<size_t>(id)];
    if (csv) {
      AppendCsvField(out, l.workers.name(id));
      out += ',';
    } else {
      out += "{\"worker\": ";
      AppendJsonString(out, l.workers.name(id));
      out += ", \"accuracy\": ";
    }
    if (std::isfinite(accuracy)) {
      AppendNumber(out, accuracy);
    } else if (!csv) {
      out += "null";
    }
    out += csv ? "," : ", \"labels\": ";
    AppendInt(out, r.worker_labels[static_cast<size_t>(id)]);
    out += csv ? "\n" : "}\n";
    w.MaybeFlush();
  }
}

struct GoldReport {
  int64_t items = 0;    // gold items found in the data
  int64_t correct = 0;  // of those, aggregated to the gold label
  int64_t missing = 0;  // gold items with no judgments
};

Result<GoldReport> CompareWithGold(const std::string& path, const LoadedJudgments& l, const AggregateResult& r) {
  CG_ASSIGN_OR_RETURN(CsvFile file, CsvFile::Open(path));
  std::vector<char> is_output(l.items.size(), 0);
  for (const int32_t id : l.output_items) is_output[static_cast<size_t>(id)] = 1;
  std::vector<char> seen(l.items.size(), 0);
  GoldReport report;
  CG_RETURN_IF_ERROR(file.ForEachRow({"item", "label"}, [&](int64_t line, const std::string_view* f) -> Status {
    const int32_t id = l.items.Find(f[0]);
    if (id < 0 || !is_output[static_cast<size_t>(id)]) {
      ++report.missing;
      return Status::Ok();
    }
    if (seen[static_cast<size_t>(id)]) {
      return Status::InvalidArgument(path + ":" + std::to_string(line) + ": item \"" + std::string(f[0]) +
                                     "\" appears twice");
    }
    seen[static_cast<size_t>(id)] = 1;
    ++report.items;
    const int32_t label = r.items[static_cast<size_t>(id)].label;
    if (label >= 0 && l.label_text[static_cast<size_t>(label)] == f[1]) ++report.correct;
    return Status::Ok();
  }));
  return report;
}

Result<std::unique_ptr<LoadedJudgments>> LoadRun(const CliContext& ctx, const AggregateArgs& a) {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<EngineImpl> engine, ctx.OpenEngine());
  CG_ASSIGN_OR_RETURN(std::unique_ptr<RunDispatcher> dispatcher, engine->NewRunDispatcher());
  CG_ASSIGN_OR_RETURN(std::vector<ExportRow> rows, dispatcher->Export(a.run));
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const RunView> view, dispatcher->RunViewOf(a.run));
  return LoadRunJudgments(rows, *view->config, a.field);
}

int RunAggregate(const CliContext& ctx, const AggregateArgs& a) {
  if (a.run.empty() == a.input.empty()) {
    return Fail(Status::InvalidArgument("aggregate: give a RUN or --input FILE.csv (one of them)"));
  }
  if (!a.input.empty() && !a.field.empty()) {
    return Fail(Status::InvalidArgument("aggregate: --field applies to a RUN; a --input file has one label column"));
  }
  auto method = ParseAggregationMethod(a.method);
  if (!method.ok()) return Fail(method.status());
  auto loaded = a.input.empty() ? LoadRun(ctx, a) : LoadCsvJudgments(a.input);
  if (!loaded.ok()) return Fail(loaded.status());
  const LoadedJudgments& l = **loaded;

  AggregateOptions options;
  options.method = *method;
  options.known = l.known;
  const auto start = std::chrono::steady_clock::now();
  auto result = Aggregate(l.judgments, options);
  const double compute_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.ok()) return Fail(result.status());

  std::optional<GoldReport> gold;
  if (!a.gold.empty()) {
    auto g = CompareWithGold(a.gold, l, *result);
    if (!g.ok()) return Fail(g.status());
    gold = *g;
  }

  const bool rows_wanted = !ctx.json || !a.out.empty();
  if (rows_wanted) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, &std::fclose);
    if (!a.out.empty()) {
      file.reset(std::fopen(a.out.c_str(), "wb"));
      if (!file) return Fail(Status::InvalidArgument("--out " + a.out + ": cannot write"));
    }
    Writer w(file ? file.get() : stdout);
    if (a.workers) {
      WriteWorkers(w, l, *result, a.format == "csv");
    } else {
      WriteItems(w, l, *result, a.format == "csv");
    }
    if (!w.Close()) return Fail(Status::Unavailable("aggregate: write failed"));
  }

  const std::string method_name(AggregationMethodName(*method));
  if (ctx.json) {
    nlohmann::json s = {{"method", method_name},
                        {"judgments", l.judgments.size()},
                        {"items", l.output_items.size()},
                        {"workers", l.workers.size()},
                        {"labels", l.labels.size()},
                        {"iterations", result->iterations},
                        {"converged", result->converged},
                        {"compute_seconds", compute_s},
                        {"out", a.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.out)}};
    if (!a.run.empty()) {
      s["field"] = l.field;
      s["golds_used"] = l.golds_used;
      s["golds_skipped"] = l.golds_skipped;
    }
    if (gold) {
      s["gold"] = {{"items", gold->items},
                   {"correct", gold->correct},
                   {"accuracy", JsonNumberOrNull(gold->items == 0 ? NAN : double(gold->correct) / gold->items)},
                   {"missing", gold->missing}};
    }
    PrintJson(s);
    return 0;
  }
  std::fprintf(stderr, "aggregated %zu items (%zu judgments, %zu workers, %zu labels) with %s", l.output_items.size(),
               l.judgments.size(), l.workers.size(), l.labels.size(), method_name.c_str());
  if (*method == AggregationMethod::kDawidSkene) {
    std::fprintf(stderr, ": %s after %d iterations", result->converged ? "converged" : "stopped", result->iterations);
  }
  std::fprintf(stderr, "\n");
  if (!a.run.empty() && (l.golds_used > 0 || l.golds_skipped > 0)) {
    std::fprintf(stderr, "golds counted as known truths: %lld (skipped, no answer for \"%s\": %lld)\n",
                 static_cast<long long>(l.golds_used), l.field.c_str(), static_cast<long long>(l.golds_skipped));
  }
  if (gold) {
    if (gold->items > 0) {
      std::fprintf(stderr, "accuracy against %s: %.4f (%lld of %lld items", a.gold.c_str(),
                   double(gold->correct) / gold->items, static_cast<long long>(gold->correct),
                   static_cast<long long>(gold->items));
    } else {
      std::fprintf(stderr, "accuracy against %s: none of its items were labelled (", a.gold.c_str());
    }
    std::fprintf(stderr, "; %lld gold items not in the data)\n", static_cast<long long>(gold->missing));
  }
  if (!a.out.empty()) std::fprintf(stderr, "wrote %s\n", a.out.c_str());
  return 0;
}

}  // namespace

void AddAggregateCommand(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("aggregate", "One label per item from the workers' labels (a run or a CSV file)");
  auto a = std::make_shared<AggregateArgs>();
  cmd->add_option("RUN", a->run, "Run id (its submitted units)");
  cmd->add_option("--input", a->input, "CSV file with columns item,worker,label instead of a run");
  cmd->add_option("--method", a->method, "majority | dawid-skene (default) | wawa")
      ->check(CLI::IsMember({"majority", "dawid-skene", "wawa"}));
  cmd->add_option("--field", a->field, "The answer field holding the label (default: the only field)");
  cmd->add_option("--gold", a->gold, "CSV file with columns item,label: report accuracy against it");
  cmd->add_flag("--workers", a->workers, "Print each worker's estimated accuracy instead of the items");
  cmd->add_option("--out", a->out, "Write the rows to this file instead of stdout");
  cmd->add_option("--format", a->format, "jsonl (default) or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  cmd->callback([&ctx, a] { ctx.action = [&ctx, a] { return RunAggregate(ctx, *a); }; });
}

}  // namespace crowdgate::cli
