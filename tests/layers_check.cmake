cmake_minimum_required(VERSION 3.20)
# ctest: cmake/check_layers.cmake passes the real common/ and refuses a tree in which a
# lower area (queue) includes a higher one (consume), naming the file and the include.
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch dir> -P layers_check.cmake
set(checker "${SOURCE_DIR}/cmake/check_layers.cmake")

execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${SOURCE_DIR}/common -P ${checker}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the real common/ should pass the layer check:\n${err}")
endif()

set(bad "${WORK_DIR}/layers-bad")
file(REMOVE_RECURSE "${bad}")
file(WRITE "${bad}/include/mq/consume/thing.hpp" "#pragma once\n#include \"mq/queue/queue.hpp\"\n")
file(WRITE "${bad}/src/queue/queue.cpp" "#include \"mq/queue/queue.hpp\"\n#include \"mq/consume/thing.hpp\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${bad} -P ${checker}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "queue including consume must fail the layer check")
endif()
if(NOT err MATCHES "src/queue/queue.cpp" OR NOT err MATCHES "mq/consume/thing.hpp")
  message(FATAL_ERROR "the failure should name the file and the include, got:\n${err}")
endif()

file(WRITE "${bad}/src/newarea/x.cpp" "#include \"mq/queue/queue.hpp\"\n")
file(REMOVE "${bad}/src/queue/queue.cpp")
execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${bad} -P ${checker}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "has no layer")
  message(FATAL_ERROR "an area without a layer must fail the check, got rc=${rc}:\n${err}")
endif()
file(REMOVE_RECURSE "${bad}")
message(STATUS "layer check: real tree passes, upward include and unknown area refused")
