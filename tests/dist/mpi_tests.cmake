# Tests of src/dist that need several MPI ranks (included from tests/CMakeLists.txt).
# test_dist_mpi is a GoogleTest program with its own main that ctest starts under
# mpiexec; test_dist (the single-process suite of tests/dist/*.cpp) drives its failure
# scenarios. The end-to-end scripts need txl_train and run once it exists.
file(GLOB txl_dist_mpi_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/mpi/*.cpp)
add_executable(test_dist_mpi ${txl_dist_mpi_sources})
target_link_libraries(test_dist_mpi PRIVATE txl_dist txl_cpu GTest::gtest)
if(TARGET test_dist)
  add_dependencies(test_dist test_dist_mpi)
endif()

# Open MPI refuses root and more ranks than cores unless told; these variables say so
# without command-line flags other MPIs would not understand.
set(txl_mpi_test_env
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    TXL_COLLECTIVE_TIMEOUT_S=60)
foreach(ranks 2 3)
  add_test(NAME dist_mpi.np${ranks}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} $<TARGET_FILE:test_dist_mpi>)
  set_tests_properties(dist_mpi.np${ranks} PROPERTIES LABELS "cpu;dist;mpi" TIMEOUT 180
                       ENVIRONMENT "${txl_mpi_test_env}")
endforeach()

# Parameter comparison of two checkpoints, for the end-to-end scripts.
add_executable(txl_checkpoint_diff ${CMAKE_CURRENT_LIST_DIR}/tools/checkpoint_diff.cpp)
target_link_libraries(txl_checkpoint_diff PRIVATE txl_io)

# End-to-end: np1 vs np2 parameter equivalence and the killed-rank check with the real
# txl_train (about 30 s; labelled slow so the sanitizer pass skips it).
if(TARGET txl_train AND TARGET txl_prep)
  add_test(NAME dist_e2e.equivalence
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_equivalence.sh ${CMAKE_BINARY_DIR}/bin
                   ${CMAKE_CURRENT_BINARY_DIR}/dist_equivalence)
  set_tests_properties(dist_e2e.equivalence PROPERTIES LABELS "cpu;dist;e2e;slow" TIMEOUT 600)
  # log_all_ranks with two MPI ranks: rank 1's train_log_rank_1.log (a few seconds). Not
  # labelled mpi: the sanitizer pass selects that label and does not build txl_train.
  add_test(NAME dist_e2e.rank_logs
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_rank_logs.sh ${CMAKE_BINARY_DIR}/bin
                   ${CMAKE_CURRENT_BINARY_DIR}/dist_rank_logs)
  set_tests_properties(dist_e2e.rank_logs PROPERTIES LABELS "cpu;dist;e2e" TIMEOUT 300)
endif()
