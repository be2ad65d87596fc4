// Plots for the examples: each plot's gnuplot script is written beside its CSV, and rendered to
// SVG when gnuplot is installed (Debian's gnuplot-nox), so a plot can always be redrawn by hand.
// Every string that reaches a script (titles, labels, file names) goes through gnuplot_text.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <soda/soda.hpp>
#include <string>

namespace examples {

// 'text' for a POSIX shell, with any ' inside written as '\''.
inline std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `text` as a gnuplot string literal. In single quotes gnuplot reads every character as itself
// except ', written ''; the terminal is noenhanced, so _ ^ { } @ & ~ print as themselves too.
inline std::string gnuplot_text(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) {
    throw soda::ValueError("gnuplot_text: '" + text +
                           "' holds a line break, which a gnuplot "
                           "string cannot");
  }
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A plot's title and axis labels (empty: none).
struct PlotLabels {
  std::string title, x, y;
};

// The script's preamble: the SVG terminal, its output file `name`.svg and the labels.
inline std::string gnuplot_preamble(const std::string& name, const PlotLabels& labels) {
  std::string script = "set terminal svg size 800,560 dynamic noenhanced font 'sans,12'\n";
  script += "set output " + gnuplot_text(name + ".svg") + "\n";
  if (!labels.title.empty()) script += "set title " + gnuplot_text(labels.title) + "\n";
  if (!labels.x.empty()) script += "set xlabel " + gnuplot_text(labels.x) + "\n";
  if (!labels.y.empty()) script += "set ylabel " + gnuplot_text(labels.y) + "\n";
  return script;
}

inline bool gnuplot_available() {
  static const bool available = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  return available;
}

// Set (to anything) in tests: a plot that fails, or a gnuplot that prints a warning, is an error
// instead of a warning line.
inline bool strict_plots() {
  return std::getenv("SODA_STRICT_PLOTS") != nullptr;
}

namespace detail {

inline std::string text_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Why a plot failed, or empty when gnuplot ran silently and drew a non-empty SVG.
inline std::string plot_problem(int status, const std::string& messages,
                                const std::filesystem::path& svg) {
  if (status != 0) return "gnuplot exited with status " + std::to_string(status);
  if (!messages.empty()) return "gnuplot printed a warning";
  std::error_code error;
  if (!std::filesystem::exists(svg, error) || std::filesystem::file_size(svg, error) == 0) {
    return "no SVG was drawn";
  }
  return "";
}

}  // namespace detail

// Writes out_dir/name.gp (the preamble, then `body`, which draws the plot) and runs it from
// out_dir. Returns whether out_dir/name.svg was drawn. gnuplot's messages are kept beside the
// script (name.gp.log) and quoted when it fails.
inline bool plot_with_gnuplot(const std::filesystem::path& out_dir, const std::string& name,
                              const PlotLabels& labels, const std::string& body) {
  const auto script_path = out_dir / (name + ".gp");
  soda::write_file_atomically(script_path, gnuplot_preamble(name, labels) + body);
  if (!gnuplot_available()) return false;
  const auto log_path = out_dir / (name + ".gp.log");
  const std::string command = "cd " + shell_quoted(out_dir.string()) + " && gnuplot " +
                              shell_quoted(name + ".gp") + " 2> " +
                              shell_quoted(log_path.filename().string());
  const int status = std::system(command.c_str());
  const std::string messages = detail::text_of(log_path);
  const auto problem = detail::plot_problem(status, messages, out_dir / (name + ".svg"));
  if (problem.empty()) {
    std::error_code ignored;
    std::filesystem::remove(log_path, ignored);
    return true;
  }
  const std::string report =
      "plot " + script_path.string() + ": " + problem + (messages.empty() ? "" : ":\n" + messages);
  if (strict_plots()) throw soda::Error(report);
  std::cerr << "warning: " << report << "\n";
  return false;
}

}  // namespace examples
