// Small helpers shared by the C++ benchmark programs: command-line options,
// a monotonic clock, sample statistics and one-line JSON output.
//
// Every benchmark program prints exactly one JSON object per run on stdout;
// perf/report/runner.py reads those lines. Diagnostics go to stderr.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <time.h>

namespace perf {

// Nanoseconds on CLOCK_MONOTONIC (vDSO, no syscall).
inline std::uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

// CPU time (user + system) of the calling process, in nanoseconds.
inline std::uint64_t process_cpu_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

// CPU time (user + system) of the calling thread, in nanoseconds.
inline std::uint64_t thread_cpu_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "fatal: %s\n", what);
  std::exit(2);
}

// "--name value" options; positional words are kept in order.
class options {
public:
  options(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a.starts_with("--")) {
        std::string key(a.substr(2));
        if (auto eq = key.find('='); eq != std::string::npos) {
          values_[key.substr(0, eq)] = key.substr(eq + 1);
        } else if (i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--") {
          values_[key] = argv[++i];
        } else {
          values_[key] = "1";
        }
      } else {
        positional_.emplace_back(a);
      }
    }
  }
  std::string str(const std::string& k, std::string def = {}) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  std::uint64_t num(const std::string& k, std::uint64_t def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::strtoull(it->second.c_str(), nullptr, 0);
  }
  double real(const std::string& k, double def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::strtod(it->second.c_str(), nullptr);
  }
  bool flag(const std::string& k) const { return values_.count(k) != 0; }
  const std::vector<std::string>& positional() const { return positional_; }

private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Builds one flat JSON object, keys in insertion order.
class json_line {
public:
  json_line& add(std::string_view k, std::string_view v) {
    key(k);
    out_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
    return *this;
  }
  json_line& add(std::string_view k, const char* v) { return add(k, std::string_view(v)); }
  json_line& add(std::string_view k, double v) {
    key(k);
    char buf[64];
    if (std::isfinite(v))
      std::snprintf(buf, sizeof buf, "%.6g", v);
    else
      std::snprintf(buf, sizeof buf, "null");
    out_ += buf;
    return *this;
  }
  json_line& add(std::string_view k, std::uint64_t v) {
    key(k);
    out_ += std::to_string(v);
    return *this;
  }
  json_line& add(std::string_view k, int v) { return add(k, std::uint64_t(v)); }
  json_line& add(std::string_view k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
    return *this;
  }
  // A nested object given as already-formatted JSON text.
  json_line& raw(std::string_view k, std::string_view json) {
    key(k);
    out_ += json;
    return *this;
  }
  std::string str() const { return out_ + "}"; }
  void print() const {
    std::string s = str();
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }

private:
  void key(std::string_view k) {
    out_ += out_.size() > 1 ? "," : "";
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  std::string out_ = "{";
};

// Percentile (0..100) of an unsorted sample; sorts a copy.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double idx = p / 100.0 * double(v.size() - 1);
  auto lo = std::size_t(std::floor(idx));
  auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}

}  // namespace perf
