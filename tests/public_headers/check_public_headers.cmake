# Checks that the public headers (INCLUDE_DIR/crowdgate/*.hpp) expose only public types.
#
#   cmake -DINCLUDE_DIR=<dir> -DCXX=<compiler> -DWORK_DIR=<scratch dir>
#         [-DSYSTEM_INCLUDES=<dir>|<dir>...] -P check_public_headers.cmake
#
# A public header may reach an internal type in three ways, and each is refused:
#  1. it includes an internal header: every quoted #include must be "crowdgate/...";
#  2. it names a type by class-key without including its definition (a forward declaration
#     `struct RunConfig;`, an elaborated `const struct RunConfig&`, a `friend class ...`): every
#     struct/class it names must be defined in some public header. Such a declaration compiles on
#     its own, so only this check sees it. The opaque handles below are the deliberate exceptions;
#   3. it relies on something outside the public headers to compile: each header must compile
#     alone with only INCLUDE_DIR and the third-party include dirs (SYSTEM_INCLUDES, `|`-separated)
#     on the include path, never src/.
# Every problem is printed, one line each ("<header>: ..."), and the script then fails.
cmake_minimum_required(VERSION 3.25)

# Types declared in the public headers and defined inside the library on purpose: callers only
# hold and pass back pointers to them. Adding one here is a decision about the public API.
set(OPAQUE_HANDLES
  CompiledRequirements  # engine.hpp: Engine::Compile's result, passed back to Engine::Check
)

foreach(var INCLUDE_DIR CXX WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "check_public_headers: -D${var}=... is required")
  endif()
endforeach()

file(GLOB headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/crowdgate/*.hpp")
list(SORT headers)
if(NOT headers)
  message(FATAL_ERROR "check_public_headers: no headers in ${INCLUDE_DIR}/crowdgate")
endif()

set(id "[A-Za-z_][A-Za-z0-9_]*")
set(ws "[ \t\r\n]")

# The header's code without comments, string literals and template parameter lists (whose
# `class T` names no type).
function(code_of header out)
  file(READ "${INCLUDE_DIR}/${header}" text)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " text "${text}")
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  string(REGEX REPLACE "\"([^\"\\\\\n]|\\\\.)*\"" "\"\"" text "${text}")
  string(REGEX REPLACE "template${ws}*<[^>]*>" "template" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# Names after `struct` / `class` in `code`; with `defining`, only where a body or base list follows.
function(class_names code defining out)
  if(defining)
    set(pattern "(^|[^A-Za-z0-9_])(struct|class)${ws}+${id}${ws}*(final${ws}*)?({|:[^:])")
  else()
    set(pattern "(^|[^A-Za-z0-9_])(struct|class)${ws}+${id}")
  endif()
  string(REGEX MATCHALL "${pattern}" found "${code}")
  set(names "")
  foreach(f IN LISTS found)
    string(REGEX REPLACE "^.*(struct|class)${ws}+(${id}).*$" "\\2" name "${f}")
    list(APPEND names "${name}")
  endforeach()
  list(REMOVE_DUPLICATES names)
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

set(public_types "")
foreach(h IN LISTS headers)
  code_of("${h}" code)
  class_names("${code}" TRUE defined)
  list(APPEND public_types ${defined})
endforeach()

set(problems 0)
foreach(h IN LISTS headers)
  # Includes are read before string literals are blanked out.
  file(READ "${INCLUDE_DIR}/${h}" raw)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " raw "${raw}")
  string(REGEX REPLACE "//[^\n]*" "" raw "${raw}")
  string(REGEX MATCHALL "#[ \t]*include[ \t]*\"[^\"]*\"" includes "${raw}")
  foreach(inc IN LISTS includes)
    string(REGEX REPLACE "^.*\"([^\"]*)\"$" "\\1" path "${inc}")
    if(NOT path MATCHES "^crowdgate/")
      message(NOTICE "${h}: includes \"${path}\", which is not a public header")
      math(EXPR problems "${problems} + 1")
    endif()
  endforeach()

  code_of("${h}" code)
  class_names("${code}" FALSE named)
  foreach(name IN LISTS named)
    if(NOT name IN_LIST public_types AND NOT name IN_LIST OPAQUE_HANDLES)
      message(NOTICE "${h}: names ${name}, which no public header defines (an internal type?)")
      math(EXPR problems "${problems} + 1")
    endif()
  endforeach()
endforeach()

set(flags -std=c++20 -fsyntax-only "-I${INCLUDE_DIR}")
if(SYSTEM_INCLUDES)
  string(REPLACE "|" ";" system_includes "${SYSTEM_INCLUDES}")
  foreach(dir IN LISTS system_includes)
    list(APPEND flags "-isystem" "${dir}")
  endforeach()
endif()
file(MAKE_DIRECTORY "${WORK_DIR}")
foreach(h IN LISTS headers)
  string(MAKE_C_IDENTIFIER "${h}" tu)
  set(tu "${WORK_DIR}/${tu}.cpp")
  file(WRITE "${tu}" "#include \"${h}\"\n")
  execute_process(COMMAND "${CXX}" ${flags} "${tu}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(NOTICE "${h}: does not compile alone with only the public and third-party include dirs:\n${out}")
    math(EXPR problems "${problems} + 1")
  endif()
endforeach()

list(LENGTH headers n)
if(problems GREATER 0)
  message(FATAL_ERROR "check_public_headers: ${problems} problem(s) in ${n} public headers")
endif()
message(STATUS "check_public_headers: ${n} public headers expose only public types")
