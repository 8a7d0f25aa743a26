# saw-authorized-keys and pam_saw.so: the clients of saw-guestd's ControlSocket (issue #3).
# Included at the end of guestd/CMakeLists.txt, so that the daemon's build file and this one
# have one owner each. Paths are relative to this file's folder.
# GLOBAL: tests/e2e/akc.cmake links its PAM harness against it too.
pkg_check_modules(PAM REQUIRED IMPORTED_TARGET GLOBAL pam)

# The socket client and saw-authorized-keys' pure functions, linked by the tool and its tests.
add_library(sawakc STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gsock-client.c
  ${CMAKE_CURRENT_LIST_DIR}/akc.c)
target_link_libraries(sawakc PUBLIC PkgConfig::JANSSON PkgConfig::OPENSSL)

add_executable(saw-authorized-keys ${CMAKE_CURRENT_LIST_DIR}/saw-authorized-keys.c)
target_link_libraries(saw-authorized-keys PRIVATE sawakc)

# pam_saw.so is dlopen()ed by sshd. It compiles gsock-client.c itself rather than linking
# sawakc: it needs no libcrypto, and it must not carry sanitizer instrumentation (an ASan
# module cannot load into an uninstrumented sshd) nor -pie (it is a shared object). Only the
# pam_sm_* entry points are exported (pam_saw.map), so our helpers never clash with the host's.
add_library(pam_saw MODULE
  ${CMAKE_CURRENT_LIST_DIR}/pam_saw.c
  ${CMAKE_CURRENT_LIST_DIR}/gsock-client.c)
set_target_properties(pam_saw PROPERTIES PREFIX "")
target_link_libraries(pam_saw PRIVATE PkgConfig::PAM PkgConfig::JANSSON)
get_target_property(_pam_saw_copts pam_saw COMPILE_OPTIONS)
get_target_property(_pam_saw_lopts pam_saw LINK_OPTIONS)
if(_pam_saw_copts)
  list(FILTER _pam_saw_copts EXCLUDE REGEX "sanitize")
  set_target_properties(pam_saw PROPERTIES COMPILE_OPTIONS "${_pam_saw_copts}")
endif()
if(_pam_saw_lopts)
  list(FILTER _pam_saw_lopts EXCLUDE REGEX "sanitize|^-pie$")
  set_target_properties(pam_saw PROPERTIES LINK_OPTIONS "${_pam_saw_lopts}")
endif()
target_link_options(pam_saw PRIVATE -Wl,--no-undefined
  -Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/pam_saw.map)
set_property(TARGET pam_saw APPEND PROPERTY LINK_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/pam_saw.map)

# sshd runs the AuthorizedKeysCommand only if every directory of its path is root-owned and
# not group/other-writable: ${CMAKE_INSTALL_LIBEXECDIR}/saw is (with a /usr prefix).
# PAM looks for modules in /lib/<multiarch>/security (= /usr/lib/… with merged /usr): install
# with CMAKE_INSTALL_PREFIX=/usr for a system whose PAM should find it.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(SAW_PAM_MODULEDIR lib/${CMAKE_LIBRARY_ARCHITECTURE}/security)
else()
  set(SAW_PAM_MODULEDIR lib/security)
endif()
install(TARGETS saw-authorized-keys DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/saw
  PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
              WORLD_READ WORLD_EXECUTE)
install(TARGETS pam_saw LIBRARY DESTINATION ${SAW_PAM_MODULEDIR})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/saw-authorized-keys.8 ${CMAKE_CURRENT_LIST_DIR}/pam_saw.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_SOURCE_DIR}/conf/sshd-saw.conf ${CMAKE_SOURCE_DIR}/conf/pam.d-sshd-saw
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
