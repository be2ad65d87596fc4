# ctest cases for the examples' command lines: each runs one example with a bad value and passes
# when the example refuses it with a non-zero exit status and a readable line (no abort, no
# wrap-around, no "test accuracy: 0%"). Included at the end of examples/CMakeLists.txt:
#   include(cli_tests.cmake)
# Refusals happen while parsing, before any data is loaded, so each case takes milliseconds.

set(_soda_refusal_script "${CMAKE_CURRENT_LIST_DIR}/../tests/examples/expect_refusal.cmake")
set(_soda_a_file "${CMAKE_CURRENT_LIST_DIR}/CMakeLists.txt")  # an existing regular file
set(_soda_a_folder "${CMAKE_CURRENT_LIST_DIR}")                # an existing folder

# soda_cli_refusal(<case> <example> <expected regex> [FORBIDDEN <regex>] <arguments...>)
# (a ';' would split the regex into a list: write '.' for it, and for brackets.)
function(soda_cli_refusal case example expected)
  cmake_parse_arguments(ARG "" "FORBIDDEN" "" ${ARGN})
  string(JOIN "|" joined ${ARG_UNPARSED_ARGUMENTS})
  set(forbidden "")
  if(ARG_FORBIDDEN)
    set(forbidden "-DFORBIDDEN=${ARG_FORBIDDEN}")
  endif()
  add_test(NAME cli_${example}_${case}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=$<TARGET_FILE:${example}>" "-DARGUMENTS=${joined}"
                   "-DEXPECTED=${expected}" ${forbidden} -P "${_soda_refusal_script}")
  set_tests_properties(cli_${example}_${case} PROPERTIES LABELS examples_cli TIMEOUT 150)
endfunction()

# train_cifar10: the values issue 18 names, then every other numeric option.
soda_cli_refusal(model_unknown train_cifar10 "--model: unknown model 'resnet'. valid: resnet20"
                 --model resnet)
soda_cli_refusal(model_depth train_cifar10 "unknown model 'resnet7'" --model resnet7)
soda_cli_refusal(out_is_file train_cifar10 "--out: '.*' is a file, not a folder"
                 --out ${_soda_a_file})
soda_cli_refusal(out_below_file train_cifar10 "error: output folder '.*': cannot create it"
                 --out ${_soda_a_file}/run)
soda_cli_refusal(train_subset_negative train_cifar10 "--train-subset: '-5' is not a whole number"
                 --train-subset -5)
soda_cli_refusal(threads_negative train_cifar10 "--threads: '-1' is not a whole number in .0, 1024."
                 --threads -1)
soda_cli_refusal(seed_negative train_cifar10 "--seed: '-1' is not a whole number in .0, 2.64 - 1."
                 --seed -1)
soda_cli_refusal(time_budget_nan train_cifar10 "--time-budget: 'nan' is not a finite number"
                 --time-budget nan)
soda_cli_refusal(eval_batches_zero train_cifar10 "--eval-batches: '0' is neither -1"
                 FORBIDDEN "test accuracy" --eval-batches 0)
soda_cli_refusal(epochs_zero train_cifar10 "--epochs: '0' is not a whole number >= 1" --epochs 0)
soda_cli_refusal(batch_zero train_cifar10 "--batch: '0' is not a whole number >= 1" --batch 0)
soda_cli_refusal(batch_fraction train_cifar10 "--batch: '1.5' is not a whole number" --batch 1.5)
soda_cli_refusal(lr_negative train_cifar10 "--lr: '-0.1' is not a finite number" --lr -0.1)
soda_cli_refusal(lr_infinite train_cifar10 "--lr: 'inf' is not a finite number" --lr inf)
soda_cli_refusal(momentum train_cifar10 "--momentum: '1.5' is not a finite number in .0, 1."
                 --momentum 1.5)
soda_cli_refusal(weight_decay train_cifar10 "--weight-decay: '-1' is not" --weight-decay -1)
soda_cli_refusal(hessian_power train_cifar10 "--hessian-power: 'nan' is not" --hessian-power nan)
soda_cli_refusal(hessian_samples train_cifar10 "--hessian-samples: '0' is not" --hessian-samples 0)
soda_cli_refusal(update_each train_cifar10 "--update-each: '0' is not" --update-each 0)
soda_cli_refusal(warmup_negative train_cifar10 "--warmup: '-1' is not" --warmup -1)
soda_cli_refusal(warmup_beyond_epochs train_cifar10 "error: --warmup .5. exceeds --epochs .2."
                 --epochs 2 --warmup 5)
soda_cli_refusal(label_smoothing train_cifar10 "--label-smoothing: '2' is not" --label-smoothing 2)
soda_cli_refusal(synthetic_count train_cifar10 "--synthetic-count: '3' is not"
                 --synthetic-count 3)
soda_cli_refusal(max_steps_zero train_cifar10 "--max-steps: '0' is neither -1 .no limit."
                 --max-steps 0)
soda_cli_refusal(data_missing train_cifar10 "--data: Directory does not exist"
                 --data ${_soda_a_folder}/absent)
soda_cli_refusal(resume_missing train_cifar10 "--resume: File does not exist"
                 --resume ${_soda_a_folder}/absent.safetensors)
soda_cli_refusal(optimizer_unknown train_cifar10 "--optimizer: .*not in" --optimizer sgdd)

# adaptive_batch
soda_cli_refusal(model_unknown adaptive_batch "unknown model 'resnet'" --model resnet)
soda_cli_refusal(max_batch_below_batch adaptive_batch "error: --max-batch .64. is below --batch .128."
                 --batch 128 --max-batch 64)
soda_cli_refusal(micro_batch adaptive_batch "--micro-batch: '0' is not" --micro-batch 0)
soda_cli_refusal(decay_zero adaptive_batch "--decay: '0' is not a finite number in .0, 1." --decay 0)
soda_cli_refusal(decay_epochs adaptive_batch "--decay-epochs: '0' is not" --decay-epochs 3,0)
soda_cli_refusal(eigenvalue_drop adaptive_batch "--eigenvalue-drop: '1' is not"
                 --eigenvalue-drop 1)
soda_cli_refusal(growth adaptive_batch "--growth: 'nan' is not" --growth nan)
soda_cli_refusal(duration adaptive_batch "--duration: '-1' is not" --duration -1)
soda_cli_refusal(eigen_interval adaptive_batch "--eigen-interval: '0' is not" --eigen-interval 0)
soda_cli_refusal(power_iterations adaptive_batch "--power-iterations: '0' is not"
                 --power-iterations 0)
soda_cli_refusal(epsilon adaptive_batch "--epsilon: '2' is not" --epsilon 2)
soda_cli_refusal(adversarial_fraction adaptive_batch "--adversarial-fraction: '1.5' is not"
                 --adversarial-fraction 1.5)
soda_cli_refusal(attack_steps adaptive_batch "--attack-steps: '0' is not" --attack-steps 0)
soda_cli_refusal(adversarial_until adaptive_batch "--adversarial-until: '-0.5' is not"
                 --adversarial-until -0.5)
soda_cli_refusal(eval_batches_zero adaptive_batch "--eval-batches: '0' is neither -1"
                 --eval-batches 0)
soda_cli_refusal(seed_negative adaptive_batch "--seed: '-1' is not" --seed -1)
soda_cli_refusal(methods_unknown adaptive_batch "--methods: .*not in" --methods BL,XYZ)

# hessian_spectrum
soda_cli_refusal(model_unknown hessian_spectrum "unknown model 'mlpx'" --model mlpx)
soda_cli_refusal(top_k_zero hessian_spectrum "--top-k: '0' is not" --top-k 0)
soda_cli_refusal(batches_zero hessian_spectrum "--batches: '0' is neither -1" --batches 0)
soda_cli_refusal(landscape_range hessian_spectrum "--landscape-range: 'nan' is not"
                 --landscape-range nan)
soda_cli_refusal(tolerance hessian_spectrum "--tolerance: '-1' is not" --tolerance -1)
soda_cli_refusal(grid_points hessian_spectrum "--grid-points: '1' is not" --grid-points 1)
soda_cli_refusal(memory_budget hessian_spectrum "--memory-budget-mib: 'inf' is not"
                 --memory-budget-mib inf)
soda_cli_refusal(lanczos_dimension hessian_spectrum "error: Lanczos needs --max-iterations"
                 --top-k 3 --max-iterations 2)
soda_cli_refusal(out_is_file hessian_spectrum "--out: '.*' is a file" --out ${_soda_a_file})
soda_cli_refusal(checkpoint_missing hessian_spectrum "--checkpoint: File does not exist"
                 --checkpoint ${_soda_a_folder}/absent.safetensors)

# hawq
soda_cli_refusal(model_not_resnet hawq "--model: unknown model 'mlp'. valid: resnet20" --model mlp)
soda_cli_refusal(mixed_bits hawq "--mixed-bits: '9:8'" --mixed-bits 9:8)
soda_cli_refusal(mixed_bits_form hawq "--mixed-bits: 'eight'" --mixed-bits eight)
soda_cli_refusal(calibration_percentile hawq "--calibration-percentile: '0' is not"
                 --calibration-percentile 0)
soda_cli_refusal(size_fraction hawq "--size-fraction: '0' is not" --size-fraction 0)
soda_cli_refusal(qat_steps hawq "--qat-steps: '-1' is not" --qat-steps -1)
soda_cli_refusal(eval_images_zero hawq "--eval-images: '0' is neither -1" --eval-images 0)
soda_cli_refusal(out_is_file hawq "--out: '.*' is a file" --out ${_soda_a_file})

# demo
soda_cli_refusal(classes_one demo "--classes: '1' is not a whole number in .2, 1000." --classes 1)
soda_cli_refusal(batch_zero demo "--batch: '0' is not" --batch 0)
soda_cli_refusal(seed_negative demo "--seed: '-1' is not" --seed -1)
soda_cli_refusal(json_is_folder demo "--json: '.*' is a folder" --json ${_soda_a_folder})
