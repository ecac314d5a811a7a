# Runs at install time (install(SCRIPT) in packaging/CMakeLists.txt): writes the systemd units
# with the binaries' real paths under the prefix of this install, the sysusers.d file, and the
# zsh completion where zsh looks for it under that prefix.
function(mq_dest var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

mq_dest(MQ_BINDIR_FULL "${MQ_BINDIR}")
mq_dest(MQ_DOCDIR_FULL "${MQ_DOCDIR}")
mq_dest(unit_dir "${MQ_SYSTEMD_UNIT_DIR}")
mq_dest(sysusers_dir "${MQ_SYSUSERS_DIR}")
# Debian's zsh reads /usr/share/zsh/vendor-completions; other prefixes use site-functions.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(zsh_dir "${CMAKE_INSTALL_PREFIX}/${MQ_DATADIR}/zsh/vendor-completions")
else()
  set(zsh_dir "${CMAKE_INSTALL_PREFIX}/${MQ_DATADIR}/zsh/site-functions")
endif()

# One staging directory per run: ctest runs `cmake --install` and cpack side by side.
string(RANDOM LENGTH 10 run)
set(stage "${MQ_STAGE_DIR}/${run}")
file(REMOVE_RECURSE "${stage}")
set(MQ_BINDIR "${MQ_BINDIR_FULL}")
set(MQ_DOCDIR "${MQ_DOCDIR_FULL}")
set(units)
foreach(unit mq-api.service mq-worker@.service mq-maintenance.service)
  configure_file("${MQ_PACKAGING_DIR}/systemd/${unit}.in" "${stage}/${unit}" @ONLY)
  list(APPEND units "${stage}/${unit}")
endforeach()
file(INSTALL ${units} DESTINATION "${unit_dir}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE
     GROUP_READ WORLD_READ)
file(INSTALL "${MQ_PACKAGING_DIR}/systemd/mq.sysusers" DESTINATION "${sysusers_dir}"
     RENAME mq.conf FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${MQ_COMPLETION_DIR}/_mqctl" DESTINATION "${zsh_dir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(REMOVE_RECURSE "${stage}")
