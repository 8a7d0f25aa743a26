# The per-login sandbox (issue #5): guestd-sandbox.c and sandbox.c go into saw-guestd's
# library; saw-session is the sshd ForceCommand that hands a login to it. Included at the end
# of guestd/CMakeLists.txt so that this part has a build file of its own.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)

target_sources(sawguestd PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/guestd-sandbox.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c)
target_link_libraries(sawguestd PUBLIC PkgConfig::SECCOMP)

# saw-session: small, no guestd internals; runs as the user, so the same install rules as
# saw-authorized-keys (root-owned, 0755, in libexec).
add_executable(saw-session ${CMAKE_CURRENT_LIST_DIR}/saw-session.c)
target_link_libraries(saw-session PRIVATE sawakc)
install(TARGETS saw-session DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/saw
  PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
              WORLD_READ WORLD_EXECUTE)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/saw-session.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
