# Runs an example that draws plots, with SODA_STRICT_PLOTS set (a plot that fails, or a gnuplot
# that prints any warning, ends the example with an error), and passes only when it exits 0 and
# every gnuplot script it wrote into OUT has drawn a non-empty SVG, PLOTS of them at least.
# cmake -DCOMMAND=<binary> -DARGUMENTS=<a|b|c> -DOUT=<folder> -DPLOTS=<n> -P this
string(REPLACE "|" ";" arguments "${ARGUMENTS}")
file(REMOVE_RECURSE "${OUT}")
set(ENV{SODA_STRICT_PLOTS} 1)
set(ENV{OMP_WAIT_POLICY} passive)
execute_process(
  COMMAND "${COMMAND}" ${arguments} --out "${OUT}" --quiet
  RESULT_VARIABLE status
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 300)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${COMMAND}: ended with '${status}'\n${output}")
endif()
file(GLOB scripts "${OUT}/*.gp")
list(LENGTH scripts count)
if(count LESS PLOTS)
  message(FATAL_ERROR "${COMMAND}: wrote ${count} gnuplot scripts, expected at least ${PLOTS}")
endif()
foreach(script IN LISTS scripts)
  string(REGEX REPLACE "\\.gp$" ".svg" svg "${script}")
  if(NOT EXISTS "${svg}")
    message(FATAL_ERROR "${script} drew no SVG\n${output}")
  endif()
  file(SIZE "${svg}" bytes)
  if(bytes EQUAL 0)
    message(FATAL_ERROR "${svg} is empty\n${output}")
  endif()
endforeach()
message(STATUS "${count} plots drawn in ${OUT}")
