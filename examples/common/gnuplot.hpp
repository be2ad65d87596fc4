// Plots for the examples: each plot's gnuplot script is written beside its CSV, and rendered to
// SVG when gnuplot is installed (Debian's gnuplot-nox), so a plot can always be redrawn by hand.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <soda/soda.hpp>
#include <string>

namespace examples {

// 'text' for a POSIX shell, with any ' inside written as '\''.
inline std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline bool gnuplot_available() {
  static const bool available = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  return available;
}

// Writes out_dir/name.gp (the script, which must draw into name.svg) and runs it from out_dir.
// Returns whether the SVG was drawn.
inline bool plot_with_gnuplot(const std::filesystem::path& out_dir, const std::string& name,
                              const std::string& script) {
  const auto script_path = out_dir / (name + ".gp");
  soda::write_file_atomically(script_path,
                              "set terminal svg size 800,560 dynamic enhanced font 'sans,12'\n"
                              "set output '" +
                                  name + ".svg'\n" + script);
  if (!gnuplot_available()) return false;
  const std::string command =
      "cd " + shell_quoted(out_dir.string()) + " && gnuplot " + shell_quoted(name + ".gp");
  if (std::system(command.c_str()) != 0) {
    std::cerr << "warning: gnuplot failed on " << script_path << "\n";
    return false;
  }
  return true;
}

}  // namespace examples
