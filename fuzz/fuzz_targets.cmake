# Fuzz targets: every fuzz/fuzz_<name>.cpp defines LLVMFuzzerTestOneInput.
#  - Regular build (with tests): fuzz_seeds_<name> replays fuzz/seeds/<name>/ through the
#    target (seed_replay_main.cpp); ctest test fuzz_seeds.<name>, label cpu.
#  - TXL_FUZZ=ON (a clang build, see fuzz/run.sh): fuzz_<name>, a libFuzzer binary.
option(TXL_FUZZ "Build libFuzzer binaries of fuzz/fuzz_*.cpp (clang; fuzz/run.sh)" OFF)
if(TXL_FUZZ)
  # The configuration code alone (and what it includes), so the config and command-line
  # targets need not wait for a sanitizer build of the whole trainer.
  add_library(txl_fuzz_config_lib STATIC
    ${CMAKE_SOURCE_DIR}/src/config/train_config.cpp ${CMAKE_SOURCE_DIR}/src/config/config_schema.cpp
    ${CMAKE_SOURCE_DIR}/src/config/command_line.cpp ${CMAKE_SOURCE_DIR}/src/config/preset_file.cpp
    ${CMAKE_SOURCE_DIR}/src/config/yaml_merge.cpp ${CMAKE_SOURCE_DIR}/src/config/closest_name.cpp
    ${CMAKE_SOURCE_DIR}/src/config/eval_config.cpp ${CMAKE_SOURCE_DIR}/src/model/model_config.cpp)
  target_link_libraries(txl_fuzz_config_lib PUBLIC txl_core yaml-cpp CLI11::CLI11 nlohmann_json::nlohmann_json)
endif()
file(GLOB txl_fuzz_targets CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.cpp)
foreach(source ${txl_fuzz_targets})
  get_filename_component(target ${source} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${target})
  if(TXL_FUZZ)
    add_executable(${target} ${source})
    # Targets of the data layer need only it (a sanitizer build of everything is slow).
    if(name MATCHES "^(text_tokenizer|line_reader|corpus)$")
      target_link_libraries(${target} PRIVATE txl_prep_lib)
    elseif(name MATCHES "^(config|command_line)$")
      target_link_libraries(${target} PRIVATE txl_fuzz_config_lib)
    else()
      target_link_libraries(${target} PRIVATE txl_programs_lib txl_train_lib txl_prep_lib)
    endif()
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
  endif()
  if(TXL_BUILD_TESTS)
    add_executable(fuzz_seeds_${name} ${source} ${CMAKE_SOURCE_DIR}/fuzz/seed_replay_main.cpp)
    target_link_libraries(fuzz_seeds_${name} PRIVATE txl_programs_lib txl_train_lib txl_prep_lib)
    # A target without a seeds folder fails its test, so no target goes unexercised.
    add_test(NAME fuzz_seeds.${name} COMMAND fuzz_seeds_${name} ${CMAKE_SOURCE_DIR}/fuzz/seeds/${name})
    set_tests_properties(fuzz_seeds.${name} PROPERTIES LABELS "cpu" ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 300)
  endif()
endforeach()
