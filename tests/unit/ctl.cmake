# Control-channel framing and typed messages (tunnel/ctl.c). --wrap=free lets the test see
# the tunnel token's bytes as ctl_attach_clear() frees them.
saw_unit_test(torture_ctl ${CMAKE_CURRENT_LIST_DIR}/torture_ctl.c)
target_link_libraries(torture_ctl PRIVATE sawtunnel)
target_link_options(torture_ctl PRIVATE -Wl,--wrap=free)
