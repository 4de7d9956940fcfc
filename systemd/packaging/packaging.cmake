# Install rules and the Debian package (`cpack -G DEB` in build/). Included from the top-level
# CMakeLists.txt. Layout follows Debian policy: binary in /usr/bin, unit in /lib/systemd/system,
# sysusers/tmpfiles in /usr/lib, the example config as a conffile, gzipped man pages.
include(GNUInstallDirs)

install(TARGETS smtp-oauth2-relay RUNTIME DESTINATION bin)
# Invoked under the name "sendmail" the binary behaves as sendmail(8). Not /usr/sbin/sendmail
# itself: that path belongs to the system's MTA (Postfix, Exim...); the admin links it when none is.
install(CODE "file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/smtp-oauth2-relay\")
              file(CREATE_LINK ../../bin/smtp-oauth2-relay
                   \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/smtp-oauth2-relay/sendmail\" SYMBOLIC)")
install(FILES systemd/smtp-oauth2-relay.service DESTINATION /lib/systemd/system)
install(FILES systemd/smtp-oauth2-relay.sysusers DESTINATION lib/sysusers.d RENAME smtp-oauth2-relay.conf)
install(FILES systemd/smtp-oauth2-relay.tmpfiles DESTINATION lib/tmpfiles.d RENAME smtp-oauth2-relay.conf)
install(FILES conf/config.example.toml DESTINATION /etc/smtp-oauth2-relay RENAME config.toml)
install(FILES README.md DESTINATION share/doc/smtp-oauth2-relay)

foreach(page smtp-oauth2-relay.8 smtp-oauth2-relay.toml.5)
  string(REGEX MATCH "[0-9]$" section ${page})
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/systemd/man/${page} > ${CMAKE_BINARY_DIR}/man/${page}.gz
    DEPENDS ${CMAKE_SOURCE_DIR}/systemd/man/${page} VERBATIM)
  list(APPEND RELAY_MAN_PAGES ${CMAKE_BINARY_DIR}/man/${page}.gz)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz DESTINATION share/man/man${section})
endforeach()
add_custom_target(man_pages ALL DEPENDS ${RELAY_MAN_PAGES})

set(CPACK_PACKAGE_NAME smtp-oauth2-relay)
set(CPACK_PACKAGE_VENDOR "smtp-oauth2-relay")
set(CPACK_PACKAGE_CONTACT "smtp-oauth2-relay maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "relay plain SMTP from legacy clients to Office 365 with OAuth2 (XOAUTH2)")
set(CPACK_PACKAGE_DESCRIPTION "Accepts plain SMTP from scanners, ERP jobs and scripts, spools each message durably
and delivers it to Office 365 over verified STARTTLS with SASL XOAUTH2, keeping the OAuth2 access token
fresh from a stored refresh token. Includes a sendmail-compatible entry point, status and metrics.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser | systemd")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/systemd/packaging/postinst ${CMAKE_SOURCE_DIR}/systemd/packaging/prerm
  ${CMAKE_SOURCE_DIR}/systemd/packaging/postrm ${CMAKE_SOURCE_DIR}/systemd/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
