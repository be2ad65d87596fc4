# ctest cases for the examples' plots: each example runs on a tiny budget with SODA_STRICT_PLOTS
# set, so a gnuplot warning fails the test, and every .gp script it writes must draw a non-empty
# SVG (tests/examples/check_plots.cmake). Registered only where gnuplot is installed (CI installs
# gnuplot-nox). Included at the end of examples/CMakeLists.txt: include(plot_tests.cmake)

find_program(SODA_GNUPLOT gnuplot)
if(NOT SODA_GNUPLOT)
  message(STATUS "soda: gnuplot not found; the plot tests are not registered")
  return()
endif()

set(_soda_plot_script "${CMAKE_CURRENT_LIST_DIR}/../tests/examples/check_plots.cmake")

# soda_plot_test(<example> <plots at least> <arguments...>)
function(soda_plot_test example plots)
  string(JOIN "|" joined ${ARGN})
  add_test(NAME plots_${example}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:${example}>" "-DARGUMENTS=${joined}"
                   "-DOUT=${CMAKE_CURRENT_BINARY_DIR}/plots/${example}" "-DPLOTS=${plots}"
                   -P "${_soda_plot_script}")
  set_tests_properties(plots_${example} PROPERTIES LABELS plots TIMEOUT 600)
endfunction()

# A ResNet-8 trained for a fixed number of steps (not a time budget, so every run analyses the
# same model), which hessian_spectrum and hawq take as their checkpoint.
set(_soda_plot_checkpoint "${CMAKE_CURRENT_BINARY_DIR}/plots/train_cifar10/checkpoint.safetensors")
soda_plot_test(train_cifar10 0 --model resnet8 --train-subset 256 --batch 32 --epochs 1
               --eval-batches 1 --seed 1)
set_tests_properties(plots_train_cifar10 PROPERTIES FIXTURES_SETUP plots_checkpoint)

# Each run takes seconds and draws every plot its example has.
soda_plot_test(adaptive_batch 4 --model resnet8 --methods BL,ABS --epochs 2 --batch 16
               --max-batch 32 --train-subset 64 --eval-batches 1 --hessian-samples 16
               --power-iterations 2)
soda_plot_test(hessian_spectrum 3 --model resnet8 --checkpoint ${_soda_plot_checkpoint}
               --batch 16 --batches 1 --top-k 2 --max-iterations 3 --trace-samples 3
               --density-steps 5 --density-runs 1 --grid-points 50 --layer-iterations 2
               --layer-trace-samples 2 --landscape-points 5 --landscape-2d-points 3)
soda_plot_test(hawq 1 --model resnet8 --checkpoint ${_soda_plot_checkpoint} --eval-images 32
               --calibration-images 16 --hessian-images 32 --eigen-iterations 2
               --trace-samples 8 --latency-batch 1 --qat-steps 0)
set_tests_properties(plots_hessian_spectrum plots_hawq PROPERTIES FIXTURES_REQUIRED
                                                                 plots_checkpoint)
