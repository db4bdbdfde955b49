// Fuzzes the data readers: ParseCsvRecords (in-memory CSV), ParseImportText (`qual
// import` files), and the streaming file readers ReadCsv / ReadCsvRecords / ReadJsonl /
// ReadEvalFile over the same bytes, fed through an in-memory file (memfd, nothing is
// written to disk). JSONL lines are also parsed one by one with EvalItemFromJson.
// Invariants: an accepted eval item round-trips through EvalItemToJson; the streaming
// CSV reader and the in-memory one agree on the records when both accept the input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/import_file.hpp"
#include "core/data_reader.hpp"
#include "fuzz_util.hpp"

namespace {

using json = nlohmann::json;

// An in-memory file readable by path (/proc/self/fd/N); closed on destruction.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) {
    fd_ = memfd_create("crowdgate_fuzz", 0);
    if (fd_ < 0) return;
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  ~MemFile() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

void JsonlLines(std::string_view text) {
  size_t pos = 0;
  int line = 0;
  while (pos < text.size() && line < 256) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line;
    json j = json::parse(l, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;
    auto item = crowdgate::EvalItemFromJson(j, "line");
    if (!item.ok()) continue;
    json back = crowdgate::EvalItemToJson(*item);
    auto again = crowdgate::EvalItemFromJson(back, "roundtrip");
    FUZZ_CHECK(again.ok(), "EvalItemToJson output does not parse");
    FUZZ_CHECK(*again == *item, "eval item does not round-trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto records = crowdgate::ParseCsvRecords(text);
  auto rows = crowdgate::cli::ParseImportText(text, "fuzz.csv", 1);
  if (!rows.ok()) FUZZ_CHECK(!rows.status().message().empty(), "an error without a message");
  JsonlLines(text);

  // Each streaming read allocates its 1 MiB chunk buffer, which dominates the cost of a
  // run under ASan, so one reader per input, picked by the first byte.
  if (size == 0) return 0;
  MemFile file(text);
  if (!file.ok()) return 0;
  auto check_record = [](int64_t line, json obj) {
    FUZZ_CHECK(line >= 1, "line numbers are 1-based");
    FUZZ_CHECK(obj.is_object(), "a record that is not an object");
    return crowdgate::Status::Ok();
  };
  switch (data[0] % 4) {
    case 0: {
      std::vector<std::vector<std::string>> streamed;
      crowdgate::Status st = crowdgate::ReadCsvRecords(file.path(), [&](int64_t line, std::vector<std::string> f) {
        FUZZ_CHECK(line >= 1, "line numbers are 1-based");
        streamed.push_back(std::move(f));
        return crowdgate::Status::Ok();
      });
      if (st.ok() && records.ok()) FUZZ_CHECK(streamed == *records, "ReadCsvRecords and ParseCsvRecords disagree");
      break;
    }
    case 1:
      (void)crowdgate::ReadCsv(file.path(), check_record);
      break;
    case 2:
      (void)crowdgate::ReadJsonl(file.path(), check_record);
      break;
    default:
      (void)crowdgate::ReadEvalFile(file.path());
      break;
  }
  return 0;
}
