# Follows README.md's install route from a clean slate: configure soda with what installing needs,
# `cmake --install` it to a prefix, then configure, build (Release) and run the project in this
# folder, which finds it with find_package(soda). The ctest install_route runs it:
#   cmake -D SODA_SOURCE_DIR=<soda> -D WORK_DIR=<scratch> [-D GENERATOR=Ninja]
#         [-D CXX_COMPILER=g++] -P check_install_route.cmake
cmake_minimum_required(VERSION 3.21)

foreach(required IN ITEMS SODA_SOURCE_DIR WORK_DIR)
  if(NOT ${required})
    message(FATAL_ERROR "check_install_route: pass -D ${required}=...")
  endif()
endforeach()
set(generator_args "")
if(GENERATOR)
  list(APPEND generator_args -G "${GENERATOR}")
endif()
set(compiler_args "")
if(CXX_COMPILER)
  list(APPEND compiler_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
set(prefix "${WORK_DIR}/prefix")

# Runs one step and stops with its name and exit status when it fails.
function(run_step name)
  message(STATUS "install_route: ${name}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "install_route: step '${name}' failed (${status}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
run_step("configure soda"
  "${CMAKE_COMMAND}" -S "${SODA_SOURCE_DIR}" -B "${WORK_DIR}/soda" ${generator_args} ${compiler_args}
  -DSODA_BUILD_TESTS=OFF -DSODA_BUILD_EXAMPLES=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}")
run_step("install soda" "${CMAKE_COMMAND}" --install "${WORK_DIR}/soda")
run_step("configure the consumer"
  "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${WORK_DIR}/consumer" ${generator_args}
  ${compiler_args} -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}")

# The consumer must have found the soda just installed, not another one on the machine.
file(STRINGS "${WORK_DIR}/consumer/CMakeCache.txt" soda_dir REGEX "^soda_DIR:")
string(REGEX REPLACE "^[^=]*=" "" soda_dir "${soda_dir}")
file(REAL_PATH "${prefix}" real_prefix)
file(REAL_PATH "${soda_dir}" real_soda_dir)
string(FIND "${real_soda_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "install_route: the consumer found soda in ${soda_dir}, not under ${prefix}")
endif()

run_step("build the consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer")
run_step("run the consumer" "${WORK_DIR}/consumer/my_app")
