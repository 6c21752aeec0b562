# The module layering (docs/architecture.md): every include crosses only the module
# boundaries the folders' CMakeLists.txt declare (included from tests/CMakeLists.txt).
add_test(NAME layering COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_layering.sh ${CMAKE_BINARY_DIR}/txl_modules.txt
                               ${CMAKE_SOURCE_DIR})
add_test(NAME layering.selftest COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/layering_selftest.sh)
set_tests_properties(layering layering.selftest PROPERTIES LABELS "cpu;module:layering" TIMEOUT 60)
