# zokio_backend_test(NAME name COMMAND cmd... [LABELS label...] [ENVIRONMENT var=value...]
#                    [DEFAULT_ONLY])
#
# Adds the test once per backend the build has: `name` on the backend the
# process chooses (io_uring where the kernel allows it), and `name@epoll`
# (and `name@kqueue` in a libkqueue build) with ZOKIO_BACKEND forcing that
# backend; each variant gets the backend's name as a label, so
# `ctest -L epoll` runs one backend alone. DEFAULT_ONLY: the suite tests one
# backend's internals (io_uring's ring and probes) and runs once.
set(ZOKIO_TEST_BACKENDS epoll)
if(ZOKIO_LIBKQUEUE)
  list(APPEND ZOKIO_TEST_BACKENDS kqueue)
endif()

function(zokio_backend_test)
  cmake_parse_arguments(arg "DEFAULT_ONLY" "NAME" "COMMAND;LABELS;ENVIRONMENT" ${ARGN})
  add_test(NAME ${arg_NAME} COMMAND ${arg_COMMAND})
  set(labels ${arg_LABELS} default)
  set_tests_properties(${arg_NAME} PROPERTIES LABELS "${labels}")
  if(arg_ENVIRONMENT)
    set_tests_properties(${arg_NAME} PROPERTIES ENVIRONMENT "${arg_ENVIRONMENT}")
  endif()
  if(arg_DEFAULT_ONLY)
    return()
  endif()
  foreach(backend IN LISTS ZOKIO_TEST_BACKENDS)
    add_test(NAME ${arg_NAME}@${backend} COMMAND ${arg_COMMAND})
    set(labels ${arg_LABELS} ${backend})
    set(env ZOKIO_BACKEND=${backend} ${arg_ENVIRONMENT})
    set_tests_properties(${arg_NAME}@${backend} PROPERTIES LABELS "${labels}" ENVIRONMENT "${env}")
  endforeach()
endfunction()
