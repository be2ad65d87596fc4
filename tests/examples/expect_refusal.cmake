# Runs an example with bad arguments and passes only when it refuses them: a non-zero exit status
# (not a crash or an abort, which execute_process reports as a text instead of a number), and
# output (stdout and stderr together) that matches EXPECTED and, when given, not FORBIDDEN.
# cmake -DCOMMAND=<binary> -DARGUMENTS=<a|b|c> -DEXPECTED=<regex> [-DFORBIDDEN=<regex>] -P this
string(REPLACE "|" ";" arguments "${ARGUMENTS}")
execute_process(
  COMMAND "${COMMAND}" ${arguments}
  RESULT_VARIABLE status
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 120)
string(REPLACE ";" " " shown "${arguments}")
if(NOT status MATCHES "^[0-9]+$")
  message(FATAL_ERROR "${COMMAND} ${shown}: ended by '${status}', not by a refusal\n${output}")
endif()
if(status EQUAL 0)
  message(FATAL_ERROR "${COMMAND} ${shown}: exited 0; it should refuse the arguments\n${output}")
endif()
if(NOT output MATCHES "${EXPECTED}")
  message(FATAL_ERROR "${COMMAND} ${shown}: the output does not say '${EXPECTED}'\n${output}")
endif()
if(DEFINED FORBIDDEN AND output MATCHES "${FORBIDDEN}")
  message(FATAL_ERROR "${COMMAND} ${shown}: the output says '${FORBIDDEN}'\n${output}")
endif()
