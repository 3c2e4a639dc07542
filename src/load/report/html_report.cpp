#include "load/report/html_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>

#include "load/measure/histogram.hpp"
#include "load/report/durability.hpp"
#include "load/report/files.hpp"
#include "load/report/json_read.hpp"

namespace agentstate::load {
namespace {

using nlohmann::json;
using Points = std::vector<std::pair<double, double>>;

std::string Esc(std::string_view in) { return EscapeMarkup(in); }

// Reports are read as untrusted input (a foreign or damaged *.json beside them must not
// crash the page): every lookup goes through json_read, which never throws nor reads past
// what is there.
using json_read::Arr;
using json_read::At;
using json_read::Bool;
using json_read::Obj;
using json_read::Str;

double Num(const json& j, double fallback = std::nan("")) {
  return j.is_number() ? j.get<double>() : fallback;
}
double Num(const json& j, std::initializer_list<std::string_view> path,
           double fallback = std::nan("")) {
  return json_read::Num(j, path, fallback);
}
// Element i of a row array, as a number (NaN when it is not one).
double Cell(const json& row, std::size_t i, double fallback = std::nan("")) {
  return row.is_array() && i < row.size() ? Num(row[i], fallback) : fallback;
}

std::string Fmt(double v) {
  if (!std::isfinite(v)) return "–";
  if (v == std::floor(v) && std::abs(v) < 1e12) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 1000) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

// Keeps at most `max` points: each bucket of consecutive points becomes one at the bucket's
// first x with its largest y, so spikes survive downsampling.
Points Downsample(const Points& in, std::size_t max) {
  if (in.size() <= max) return in;
  Points out;
  const double per = static_cast<double>(in.size()) / static_cast<double>(max);
  for (std::size_t b = 0; b < max; ++b) {
    const auto from = static_cast<std::size_t>(static_cast<double>(b) * per);
    const auto to = std::min(in.size(), static_cast<std::size_t>(static_cast<double>(b + 1) * per));
    if (from >= to) continue;
    double y = in[from].second;
    for (std::size_t i = from; i < to; ++i) y = std::max(y, in[i].second);
    out.emplace_back(in[from].first, y);
  }
  return out;
}

struct Series {
  std::string name;
  std::string color;
  Points points;
};
struct Band {  // a shaded x range: a phase or a fault window
  double x0, x1;
  std::string label;
  std::string cls;  // "phase" | "fault"
};

constexpr const char* kColors[] = {"#2563eb", "#f59e0b", "#dc2626", "#7c3aed",
                                   "#059669", "#db2777", "#0891b2"};

// A line chart in SVG. `log_x_percentile`: x values are percentiles, drawn on the
// 1/(1-p) log scale of a percentile spectrum. `log_y`: a log latency axis.
std::string Chart(const std::string& id, const std::string& title, const std::string& x_label,
                  const std::string& y_label, std::vector<Series> series,
                  const std::vector<Band>& bands = {}, bool log_x_percentile = false,
                  bool log_y = false) {
  constexpr double W = 640, H = 250, L = 56, R = 12, T = 36, B = 34;
  auto fx = [&](double x) {
    return log_x_percentile ? std::log10(1.0 / std::max(1e-6, 1.0 - x / 100.0)) : x;
  };
  auto fy = [&](double y) { return log_y ? std::log10(std::max(y, 1e-3)) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = log_y ? INFINITY : 0, y1 = -INFINITY;
  std::size_t total = 0;
  for (auto& s : series) {
    s.points = Downsample(s.points, kMaxChartPoints);
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, fx(x));
      x1 = std::max(x1, fx(x));
      y0 = std::min(y0, fy(y));
      y1 = std::max(y1, fy(y));
      ++total;
    }
  }
  for (const auto& b : bands) {
    x0 = std::min(x0, b.x0);
    x1 = std::max(x1, b.x1);
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  x0 = std::min(x0, 0.0);  // time from the scenario's start; percentiles from 0 %
  if (x1 <= x0) x1 = x0 + 1;
  if (!std::isfinite(y1)) y0 = 0, y1 = 1;
  if (y1 <= y0) y1 = y0 + (log_y ? 1 : std::max(1.0, std::abs(y0)));
  if (!log_y) y1 *= 1.05;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };

  std::string svg = fmt::format(
      "<svg class=\"chart\" id=\"{}\" data-points=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"{}\">"
      "<text class=\"title\" x=\"{}\" y=\"16\">{}</text>",
      Esc(id), total, W, H, Esc(title), L, Esc(title));
  for (const auto& b : bands) {
    svg += fmt::format(
        "<rect class=\"{}\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" "
        "height=\"{}\"><title>{}</title></rect>",
        b.cls, px(b.x0), T, std::max(1.0, px(b.x1) - px(b.x0)), H - T - B, Esc(b.label));
    if (b.cls == "fault") {
      svg += fmt::format("<text class=\"band\" x=\"{:.1f}\" y=\"{}\">{}</text>", px(b.x0) + 2,
                         T + 10, "fault");
    }
  }
  // Axes: five ticks; a percentile axis ticks at 0 %, 90 %, 99 %, 99.9 %, ...
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4;
    const double ylab = log_y ? std::pow(10, yv) : yv;
    svg += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>", L,
                       W - R, py(yv), py(yv));
    svg += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
                       L - 4, py(yv) + 4, Fmt(ylab));
  }
  std::vector<std::pair<double, std::string>> xticks;
  if (log_x_percentile) {
    for (int k = 0; k <= static_cast<int>(std::floor(x1)); ++k) {
      xticks.emplace_back(k, fmt::format("{:g}%", 100.0 * (1.0 - std::pow(10, -k))));
    }
  } else {
    for (int i = 0; i <= 4; ++i)
      xticks.emplace_back(x0 + (x1 - x0) * i / 4, Fmt(x0 + (x1 - x0) * i / 4));
  }
  for (const auto& [xv, xlab] : xticks) {
    svg +=
        fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    px(xv), H - B + 14, Esc(xlab));
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", L, W - R,
                     H - B, H - B);
  svg +=
      fmt::format("<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", L, L, T, H - B);
  svg += fmt::format("<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     (W + L) / 2, H - 4, Esc(x_label));
  svg += fmt::format(
      "<text class=\"label\" x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" "
      "text-anchor=\"middle\">{}</text>",
      (H - B + T) / 2, (H - B + T) / 2, Esc(y_label));
  double legend_x = W - R;  // legends right-aligned on the line under the title
  for (std::size_t i = series.size(); i-- > 0;) {
    const auto& s = series[i];
    std::string pts;
    std::size_t n = 0;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += fmt::format("{:.1f},{:.1f} ", px(fx(x)), py(fy(y)));
      ++n;
    }
    const std::string color = s.color.empty() ? kColors[i % std::size(kColors)] : s.color;
    svg += fmt::format(
        "<polyline class=\"series\" data-points=\"{}\" fill=\"none\" stroke=\"{}\" "
        "points=\"{}\"><title>{}</title></polyline>",
        n, color, pts, Esc(s.name));
    if (n == 1) {  // a single point would be invisible as a line
      auto [x, y] = s.points.front();
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", px(fx(x)),
                         py(fy(y)), color);
    }
    legend_x -= 8.0 * static_cast<double>(s.name.size()) + 22;
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"22\" width=\"10\" height=\"3\" fill=\"{}\"/><text class=\"legend\" "
        "x=\"{:.1f}\" y=\"27\">{}</text>",
        legend_x, color, legend_x + 13, Esc(s.name));
  }
  return svg + "</svg>";
}

// A generic table from a JSON array of objects, or one object of scalars.
std::string Table(const json& t) {
  std::string out = "<table>";
  if (t.is_array() && !t.empty() && t[0].is_object()) {
    // The row's name first (JSON objects come sorted by key).
    std::vector<std::string> cols;
    for (const char* lead : {"phase", "size", "hour", "wave", "measurement", "kind"}) {
      if (t[0].contains(lead)) cols.push_back(lead);
    }
    for (const auto& [k, v] : t[0].items()) {
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    }
    out += "<tr>";
    for (const auto& c : cols) out += "<th>" + Esc(c) + "</th>";
    out += "</tr>";
    for (const auto& row : t) {
      out += "<tr>";
      for (const auto& c : cols) {
        const json& v = row.contains(c) ? row[c] : json();
        out += "<td>" +
               Esc(v.is_number()   ? Fmt(v.get<double>())
                   : v.is_string() ? v.get<std::string>()
                                   : v.dump()) +
               "</td>";
      }
      out += "</tr>";
    }
  } else if (t.is_object()) {
    for (const auto& [k, v] : t.items()) {
      out += "<tr><th>" + Esc(k) + "</th><td>" +
             Esc(v.is_number()   ? Fmt(v.get<double>())
                 : v.is_string() ? v.get<std::string>()
                                 : v.dump()) +
             "</td></tr>";
    }
  }
  return out + "</table>";
}

std::string GateRow(const std::string& scenario, const json& g) {
  const bool ok = Bool(g, {"passed"});
  const std::string unit = Str(g, {"unit"});
  // append, not `" " + Esc(unit)`: g++ 12 at -O3 (Release) calls that a -Wrestrict overlap
  // (gcc bug 105329), fatal under -Werror.
  const std::string suffix = unit.empty() ? std::string() : std::string(" ").append(Esc(unit));
  const json& measured = At(g, {"measured"});
  return fmt::format(
      "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}{}</td><td>{} {}{}</td><td>{}</td></tr>",
      ok ? "ok" : "bad", Esc(scenario), Esc(Str(g, {"name"})),
      measured.is_number() ? Fmt(measured.get<double>()) : "not measured", suffix,
      Esc(Str(g, {"comparison"})), Fmt(Num(g, {"limit"})), suffix, ok ? "held" : "FAILED");
}

std::string ScenarioSection(const json& r) {
  const std::string name = Str(r, {"test_name"});
  const json& ad = Obj(r, {"additional_data"});
  const bool passed = Bool(r, {"passed"});
  const bool invalid = Bool(r, {"invalid"});
  std::string out = fmt::format(
      "<section class=\"scenario\" id=\"{}\"><h2>{} <span class=\"verdict {}\">{}</span></h2>",
      Esc(name), Esc(name),
      invalid  ? "inv"
      : passed ? "pass"
               : "fail",
      invalid  ? "INVALID"
      : passed ? "PASS"
               : "FAIL");
  if (!Str(r, {"description"}).empty()) out += "<p>" + Esc(Str(r, {"description"})) + "</p>";
  if (invalid) out += "<p class=\"bad\">INVALID: " + Esc(Str(r, {"invalid_reason"})) + "</p>";
  if (!Str(ad, {"stopped_early"}).empty())
    out += "<p class=\"bad\">Stopped early: " + Esc(Str(ad, {"stopped_early"})) + "</p>";
  if (Bool(ad, {"interrupted"}))
    out +=
        "<p class=\"bad\">Interrupted: the run was stopped (SIGINT or SIGTERM) before this "
        "scenario ended; the figures are what it measured until then.</p>";

  // Phase and fault windows, marked on the charts over time.
  std::vector<Band> bands;
  for (const auto& p : Arr(ad, {"phases"})) {
    bands.push_back(
        {Num(p, {"start_s"}, 0), Num(p, {"end_s"}, 0), "phase " + Str(p, {"name"}), "phase"});
  }
  for (const auto& f : Arr(ad, {"faults"})) {
    if (Bool(f, {"injected"})) {
      bands.push_back(
          {Num(f, {"start_s"}, 0), Num(f, {"end_s"}, 0), "fault: " + Str(f, {"fault"}), "fault"});
    }
  }
  Series p50{"p50", "", {}}, p95{"p95", "", {}}, p99{"p99", "", {}}, mx{"max", "", {}},
      ops{"ops/s", "", {}}, errs{"errors/s", "#dc2626", {}};
  // A short run's finer rows when it has them: its 1 s series would be a single point.
  const char* series =
      At(ad, {"fine_series", "rows"}).is_array() && !At(ad, {"fine_series", "rows"}).empty()
          ? "fine_series"
          : "time_series";
  double width = Num(ad, {series, "interval_s"}, 1);
  if (!(width > 0)) width = 1;
  const std::string per =
      width >= 1 ? fmt::format("{:g} s", width) : fmt::format("{:g} ms", width * 1000);
  for (const auto& row : Arr(ad, {series, "rows"})) {
    const double t = Cell(row, 0);
    ops.points.emplace_back(t, Cell(row, 1) / width);
    errs.points.emplace_back(t, Cell(row, 2) / width);
    if (Cell(row, 1, 0) == 0) continue;  // idle interval: no latency to draw
    p50.points.emplace_back(t, Cell(row, 4));
    p95.points.emplace_back(t, Cell(row, 5));
    p99.points.emplace_back(t, Cell(row, 6));
    mx.points.emplace_back(t, Cell(row, 7));
  }
  out += "<div class=\"charts\">";
  out += Chart(name + "-latency", fmt::format("Latency over time (ms, per {} interval)", per),
               "seconds", "ms", {p50, p95, p99, mx}, bands);
  out += Chart(name + "-throughput", "Throughput and errors over time", "seconds", "per second",
               {ops, errs}, bands);

  // The percentile spectrum, from the exact histogram of every phase.
  Histogram all;
  for (const auto& p : Arr(r, {"raw", "phases"})) {
    if (auto s = Histogram::SnapshotFromJson(At(p, {"latency"})))
      all.Merge(Histogram::FromSnapshot(*s));
  }
  Series spectrum{"latency", "", {}};
  for (double q :
       {0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0}) {
    if (all.Count())
      spectrum.points.emplace_back(q, static_cast<double>(all.ValueAtPercentile(q)) / 1000.0);
  }
  out += Chart(name + "-spectrum", "Latency by percentile (log scales)", "percentile", "ms",
               {spectrum}, {}, true, true);

  Series rss{"harness RSS MB", "", {}}, cpu{"harness CPU %", "", {}},
      tcpu{"harness thread CPU %", "", {}};
  std::vector<Series> mem_series, cpu_series;
  const json& samples = Arr(ad, {"resources", "samples"});
  for (const auto& s : samples) {
    rss.points.emplace_back(Cell(s, 0), Cell(s, 1));
    cpu.points.emplace_back(Cell(s, 0), Cell(s, 2));
    if (s.is_array() && s.size() > 3) tcpu.points.emplace_back(Cell(s, 0), Cell(s, 3));
  }
  mem_series.push_back(rss);
  cpu_series.push_back(cpu);
  cpu_series.push_back(tcpu);
  // Store-side figures: a server's RSS and CPU when the backend reports them (keys with
  // "rss"/"cpu"), else the store's queue depth, so the chart shows the store's side.
  for (const auto& [key, values] : Obj(ad, {"resources", "store"}).items()) {
    if (!values.is_array()) continue;
    const bool is_rss = key.find("rss") != std::string::npos,
               is_cpu = key.find("cpu") != std::string::npos;
    const bool is_queue = key.find("queue") != std::string::npos;
    if (!is_rss && !is_cpu && !is_queue) continue;
    Series s{"store " + key, "", {}};
    for (std::size_t i = 0; i < values.size() && i < samples.size(); ++i) {
      if (values[i].is_number()) s.points.emplace_back(Cell(samples[i], 0), Num(values[i]));
    }
    (is_rss ? mem_series : cpu_series).push_back(std::move(s));
  }
  out += Chart(name + "-memory", "Memory over time", "seconds", "MB", mem_series, bands);
  out += Chart(name + "-cpu", "CPU and store queues over time", "seconds", "% of a core / queued",
               cpu_series, bands);
  out += "</div>";

  out +=
      "<h3>Gates</h3><table><tr><th>scenario</th><th>gate</th><th>measured</th><th>limit</"
      "th><th>verdict</th></tr>";
  for (const auto& g : Arr(r, {"gates"})) out += GateRow(name, g);
  out += "</table>";

  json phases = json::array();
  for (const auto& p : Arr(ad, {"phases"})) {
    phases.push_back({{"phase", Str(p, {"name"})},
                      {"executor", Str(p, {"executor"})},
                      {"executed", At(p, {"executed"})},
                      {"succeeded", At(p, {"succeeded"})},
                      {"failed", At(p, {"failed"})},
                      {"retries", Num(p, {"retries"}, 0)},
                      {"p50_ms", Num(p, {"latency", "percentiles_us", "50"}) / 1000},
                      {"p99_ms", Num(p, {"latency", "percentiles_us", "99"}) / 1000},
                      {"start_s", At(p, {"start_s"})},
                      {"end_s", At(p, {"end_s"})},
                      {"errors", At(p, {"errors"}).dump()}});
  }
  out += "<h3>Phases</h3>" + Table(phases);
  for (const auto& [tname, t] : Obj(ad, {"tables"}).items())
    out += "<h3>" + Esc(tname) + "</h3>" + Table(t);
  if (!Arr(ad, {"faults"}).empty()) out += "<h3>Faults</h3>" + Table(Arr(ad, {"faults"}));
  out += "<h3>Ledger</h3>" + Table(At(ad, {"ledger"}));
  return out + "</section>";
}

constexpr const char* kStyle = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-top:1px solid #ddd;padding-top:14px}
h3{font-size:14px;margin:14px 0 4px}p{margin:4px 0}.meta{color:#555}
table{border-collapse:collapse;margin:4px 0 10px;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
th{background:#f4f4f5}tr.bad td{background:#fee2e2;color:#991b1b;font-weight:600}.bad{color:#b91c1c;font-weight:600}
#failures{border:2px solid #dc2626;background:#fef2f2;padding:8px 12px;margin:12px 0}
#failures.none{border-color:#16a34a;background:#f0fdf4}
.verdict{font-size:12px;padding:2px 8px;border-radius:10px;color:#fff;vertical-align:middle}
.verdict.pass{background:#16a34a}.verdict.fail{background:#dc2626}.verdict.inv{background:#a16207}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #eee}
svg .title{font-size:12px;font-weight:600}svg .tick,svg .legend,svg .band{font-size:10px;fill:#444}
svg .label{font-size:10px;fill:#666}svg .grid{stroke:#eee}svg .axis{stroke:#999}
svg polyline{stroke-width:1.5}svg rect.phase{fill:#3b82f6;opacity:.06}svg rect.fault{fill:#dc2626;opacity:.18}
)css";

}  // namespace

std::string HtmlReport(const json& summary, const std::vector<json>& scenarios) {
  std::string failing;
  std::string overview =
      "<table><tr><th>scenario</th><th>verdict</th><th>succeeded</th><th>p50 ms</th><th>p99 "
      "ms</th><th>wall s</th><th>gates</th></tr>";
  for (const auto& r : scenarios) {
    const std::string name = Str(r, {"test_name"});
    const bool invalid = Bool(r, {"invalid"}), passed = Bool(r, {"passed"});
    std::size_t held = 0, total = 0;
    for (const auto& g : Arr(r, {"gates"})) {
      ++total;
      held += Bool(g, {"passed"}) ? 1 : 0;
      if (!Bool(g, {"passed"})) failing += GateRow(name, g);
    }
    if (invalid) {
      failing += fmt::format("<tr class=\"bad\"><td>{}</td><td colspan=\"4\">INVALID: {}</td></tr>",
                             Esc(name), Esc(Str(r, {"invalid_reason"})));
    }
    const json& m = Obj(r, {"metrics"});
    overview += fmt::format(
        "<tr class=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{} / "
        "{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} of {} held</td></tr>",
        passed && !invalid ? "" : "bad", Esc(name), Esc(name),
        invalid  ? "INVALID"
        : passed ? "PASS"
                 : "FAIL",
        Fmt(Num(m, {"agents", "succeeded"})), Fmt(Num(m, {"agents", "executed"})),
        Fmt(Num(m, {"performance", "p50_latency_ms"})),
        Fmt(Num(m, {"performance", "p99_latency_ms"})), Fmt(Num(r, {"additional_data", "wall_s"})),
        held, total);
  }
  overview += "</table>";
  const std::string store = Str(summary, {"store"});
  std::string html =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>agentload "
      "report</title><style>";
  html += kStyle;
  html += "</style></head><body>";
  html += fmt::format(
      "<h1>agentload report</h1><p class=\"meta\">{} · store <b>{}</b> · profile {} · seed {} · "
      "shard {}{}</p>",
      Esc(Str(summary, {"generated_at"})), Esc(store), Esc(Str(summary, {"profile"})),
      At(summary, {"seed"}).is_number() ? At(summary, {"seed"}).dump() : std::string("?"),
      Esc(Str(summary, {"shard"}, "0/1")),
      Num(summary, {"merged_shards"}, 0) > 0
          ? fmt::format(" · {} shards merged", Fmt(Num(summary, {"merged_shards"}, 0)))
          : "");
  if (Bool(summary, {"interrupted"})) {
    html +=
        "<p class=\"bad\">This run was interrupted (SIGINT or SIGTERM): the reports hold what it "
        "measured until then.</p>";
  }
  html += "<p class=\"meta\">Durability contract in force: " +
          Esc(Str(summary, {"durability"}, DurabilityContract(store))) + "</p>";
  if (failing.empty()) {
    html += "<section id=\"failures\" class=\"none\"><b>Every gate held.</b></section>";
  } else {
    html +=
        "<section id=\"failures\"><b>Failed "
        "gates</b><table><tr><th>scenario</th><th>gate</th><th>measured</th><th>limit</"
        "th><th>verdict</th></tr>" +
        failing + "</table></section>";
  }
  html += "<h2>Run overview</h2>" + overview;
  for (const auto& r : scenarios) html += ScenarioSection(r);
  html += "</body></html>\n";
  return html;
}

Status WriteHtmlReport(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto summary_path = dir / "summary.json";
  std::ifstream in(summary_path);
  json summary = json::parse(in, nullptr, false);
  if (!in || summary.is_discarded() || !summary.is_object()) {
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("{} is missing or not JSON; point agentload report at a report directory",
                    summary_path.string()));
  }
  // A scenario report of ours, or null: anything else is left alone (a foreign file beside
  // the reports must never cost the page).
  auto read = [](const std::filesystem::path& path) {
    std::ifstream f(path);
    json j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !At(j, {"test_name"}).is_string() || !At(j, {"raw"}).is_object())
      return json();
    return j;
  };
  // The newest report of each scenario in the directory: for summaries that do not name
  // their reports.
  std::optional<std::map<std::string, FoundReport>> newest;
  // In the order the summary lists them: the run's order, each from the file it names.
  std::vector<json> scenarios;
  for (const auto& s : Arr(summary, {"scenarios"})) {
    const std::string name = Str(s, {"test_name"}), file = Str(s, {"report"});
    if (!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..") {
      json j = read(dir / file);
      if (!j.is_null() && Str(j, {"test_name"}) == name) {
        scenarios.push_back(std::move(j));
        continue;
      }
    }
    if (!newest) newest = NewestReports(dir);
    auto it = newest->find(name);
    if (it != newest->end()) scenarios.push_back(std::move(it->second.doc));
  }
  if (scenarios.empty()) {
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("{} holds no scenario reports of the run in summary.json", dir.string()));
  }
  return WriteTextFile(dir / "index.html", HtmlReport(summary, scenarios));
}

}  // namespace agentstate::load
