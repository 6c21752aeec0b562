// DLLogger's bytes (include/txl/train/dllogger.h): every line of the real DLLogger output
// in tests/fixtures/recipe/dllogger_sample.json is what txl's writer prints for the same
// record, and a DlLogger given the sample's records writes the sample's lines, up to the
// clock fields (timestamp, datetime, elapsedtime).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>

#include "train_test_util.h"
#include "txl/train/dllogger.h"

namespace txl {
namespace {

using ojson = nlohmann::ordered_json;

std::vector<std::string> sample_lines() {
  return test::read_lines(std::string(TXL_SOURCE_DIR) + "/tests/fixtures/recipe/dllogger_sample.json");
}

TEST(DlloggerBytes, EverySampleLineIsReproducedByteForByte) {
  const std::vector<std::string> lines = sample_lines();
  ASSERT_EQ(lines.size(), 4u);
  for (const std::string& line : lines) {
    ASSERT_EQ(line.rfind("DLLL ", 0), 0u) << line;
    const std::string body = line.substr(5);
    EXPECT_EQ(python_json_text(ojson::parse(body)), body);
  }
}

// The clock fields of a line replaced by "T" (their values differ from run to run).
std::string without_clock(const std::string& line) {
  static const std::regex clock(R"re("(timestamp|datetime|elapsedtime)": "[^"]*")re");
  return std::regex_replace(line, clock, "\"$1\": \"T\"");
}

TEST(DlloggerBytes, TheLoggerWritesTheSamplesLines) {
  const std::vector<std::string> lines = sample_lines();
  ASSERT_EQ(lines.size(), 4u);
  const std::string dir = test::fresh_dir("dllogger_bytes");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/train_log.json";
  {
    DlLogger log(path);
    for (const std::string& line : lines) {
      const ojson r = ojson::parse(line.substr(5));
      log.log(r["step"], r["data"]);
    }
  }
  const std::vector<std::string> written = test::read_lines(path);
  ASSERT_EQ(written.size(), lines.size());
  const std::regex head(R"re(DLLL \{"timestamp": "\d+(\.\d+)?", "datetime": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00", "elapsedtime": "[0-9.e-]+", "type": "LOG", .*)re");
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(std::regex_match(written[i], head)) << written[i];
    EXPECT_EQ(without_clock(written[i]), without_clock(lines[i])) << "line " << i + 1;
  }
}

TEST(DlloggerBytes, NumbersAsPythonsRepr) {
  EXPECT_EQ(python_float_repr(614.0031141255516), "614.0031141255516");
  EXPECT_EQ(python_float_repr(27747.0), "27747.0");
  EXPECT_EQ(python_float_repr(0.0), "0.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(-0.5), "-0.5");
  EXPECT_EQ(python_float_repr(6e-06), "6e-06");
  EXPECT_EQ(python_float_repr(1.5e-05), "1.5e-05");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1.2345678901234568e+16), "1.2345678901234568e+16");
  EXPECT_EQ(python_float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(python_float_repr(5e-324), "5e-324");
  EXPECT_EQ(python_float_repr(1796186055.36778), "1796186055.36778");
  EXPECT_EQ(python_float_repr(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(python_float_repr(-std::numeric_limits<double>::infinity()), "-Infinity");
  // json.dumps: ", " and ": ", non-ASCII escaped, integers and floats apart, nesting.
  const ojson v = {{"b", 1}, {"a", {1.0, -2, nullptr, true}}, {"s", "caf\u00e9 \"q\"\n"}, {"o", ojson::object()},
                   {"l", ojson::array()}};
  EXPECT_EQ(python_json_text(v), R"re({"b": 1, "a": [1.0, -2, null, true], "s": "caf\u00e9 \"q\"\n", "o": {}, "l": []})re");
}

}  // namespace
}  // namespace txl
