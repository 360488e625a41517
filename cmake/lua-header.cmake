# Turns the backplane's Redis scripts (src/lua/*.lua) into one C header: a
# `static const char SB_LUA_<NAME>[]` per script, holding lib.lua then the
# file, byte for byte, NAME being the file's name without .lua in capitals.  Run with
# `cmake -P` by the custom command in CMakeLists.txt whenever a script
# changes.  A script may hold printable ASCII, tabs and newlines only (what
# can be written as a C literal without doubt); anything else stops the
# build, as does a name that is not a C identifier's tail.
#
# Set by the caller: SB_LUA_DIR (the scripts' directory), SB_LUA_HEADER (the
# header to write).

if(NOT SB_LUA_DIR OR NOT SB_LUA_HEADER)
  message(FATAL_ERROR "lua-header.cmake: set SB_LUA_DIR and SB_LUA_HEADER")
endif()

file(GLOB sb_scripts "${SB_LUA_DIR}/*.lua")
list(SORT sb_scripts)
# lib.lua is what every script shares: it goes in front of each of them,
# and is not a script of its own.
list(REMOVE_ITEM sb_scripts "${SB_LUA_DIR}/lib.lua")
file(READ "${SB_LUA_DIR}/lib.lua" sb_lib)

set(sb_out "/*\n * The backplane's Redis scripts as C strings, generated from the files of\n")
string(APPEND sb_out " * src/lua by cmake/lua-header.cmake: edit those, not this one.\n */\n")
string(APPEND sb_out "#ifndef SB_LUA_H\n#define SB_LUA_H\n")

foreach(sb_script IN LISTS sb_scripts)
  get_filename_component(sb_name "${sb_script}" NAME_WE)
  if(NOT sb_name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "${sb_script}: a script's name is lower case letters, digits and _")
  endif()
  string(TOUPPER "${sb_name}" sb_upper)
  file(READ "${sb_script}" sb_text)
  string(PREPEND sb_text "${sb_lib}")
  # Printable ASCII, tab and newline only (the quoted "\t" and "\n" are the
  # characters themselves inside the bracket).
  if(sb_text MATCHES "[^\t\n -~]")
    message(FATAL_ERROR "${sb_script}: only printable ASCII, tabs and newlines")
  endif()
  # Backslash first, so that the escapes added next are not doubled; "?"
  # too, against trigraphs (C11 has them).
  string(REPLACE "\\" "\\\\" sb_text "${sb_text}")
  string(REPLACE "\"" "\\\"" sb_text "${sb_text}")
  string(REPLACE "?" "\\?" sb_text "${sb_text}")
  string(REPLACE "\t" "\\t" sb_text "${sb_text}")
  # One source line per script line: "...\n" then the next.
  string(REPLACE "\n" "\\n\"\n\t\"" sb_text "${sb_text}")
  string(APPEND sb_out "\n/* src/lua/${sb_name}.lua */\n"
         "static const char SB_LUA_${sb_upper}[] =\n\t\"${sb_text}\";\n")
endforeach()

string(APPEND sb_out "\n#endif\n")
file(WRITE "${SB_LUA_HEADER}" "${sb_out}")
