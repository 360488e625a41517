# Installs the systemd unit: deploy/switchboard.service.in with the installed
# paths filled in.  Included at install time by the install(CODE) rule in
# CMakeLists.txt, not at configure time, because `cmake --install --prefix`
# replaces the configured prefix: here CMAKE_INSTALL_PREFIX is the prefix of
# this install.  Not a function: file(INSTALL) records what it installs in
# the caller's scope (install_manifest.txt).
#
# Set by the caller: SB_UNIT_TEMPLATE (the .in file), SB_UNIT_WORK_DIR (where
# the filled-in copy is written), and as configured, relative to the prefix
# unless absolute: SB_UNIT_DIR, SB_UNIT_BINDIR, SB_UNIT_DOCDIR.

foreach(sb_var SB_UNIT_DIR SB_UNIT_BINDIR SB_UNIT_DOCDIR)
  if(IS_ABSOLUTE "${${sb_var}}")
    set(${sb_var}_FULL "${${sb_var}}")
  else()
    set(${sb_var}_FULL "${CMAKE_INSTALL_PREFIX}/${${sb_var}}")
  endif()
endforeach()

# The names the template uses.  They are paths on the target system: no
# DESTDIR in them (file(INSTALL) adds it to the destination only).
set(CMAKE_INSTALL_FULL_BINDIR "${SB_UNIT_BINDIR_FULL}")
set(CMAKE_INSTALL_FULL_DOCDIR "${SB_UNIT_DOCDIR_FULL}")
configure_file("${SB_UNIT_TEMPLATE}" "${SB_UNIT_WORK_DIR}/switchboard.service"
               @ONLY)
file(INSTALL DESTINATION "${SB_UNIT_DIR_FULL}" TYPE FILE
     FILES "${SB_UNIT_WORK_DIR}/switchboard.service")
