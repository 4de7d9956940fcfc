# Install rules and the Debian package (`cpack -G DEB` in build/). Included from the top-level
# CMakeLists.txt. Layout follows Debian policy: binary in /usr/bin, unit in /lib/systemd/system,
# sysusers/tmpfiles in /usr/lib, the example config as a conffile, gzipped man pages.
include(GNUInstallDirs)

install(TARGETS smtp-oauth2-relay RUNTIME DESTINATION bin)
# Invoked as sendmail, mailq or newaliases the binary behaves as those do. The package is the host's
# MTA (Provides/Conflicts/Replaces: mail-transport-agent below, as msmtp-mta and nullmailer are), so
# it ships /usr/sbin/sendmail, /usr/bin/mailq and /usr/sbin/newaliases the usual way: cron, bsd-mailx
# and unattended-upgrades then use it instead of pulling in exim4.
# `man sendmail`, `man mailq` and `man newaliases` open smtp-oauth2-relay(8), whose sendmail section
# describes them, as exim4's sendmail.8 opens exim(8).
# FHS 3.0 4.6: "/usr/lib/sendmail must be a symbolic link to the sendmail-compatible command provided
# by the system's mail transfer agent" (old scripts and some programs' built-in defaults use it).
install(CODE "foreach(link lib/smtp-oauth2-relay/sendmail:../../bin/smtp-oauth2-relay sbin/sendmail:../bin/smtp-oauth2-relay
                        lib/sendmail:../sbin/sendmail
                        bin/mailq:smtp-oauth2-relay sbin/newaliases:../bin/smtp-oauth2-relay
                        share/man/man8/sendmail.8.gz:smtp-oauth2-relay.8.gz share/man/man8/mailq.8.gz:smtp-oauth2-relay.8.gz
                        share/man/man8/newaliases.8.gz:smtp-oauth2-relay.8.gz)
                string(REPLACE \":\" \";\" pair \"\${link}\")
                list(GET pair 0 path)
                list(GET pair 1 target)
                get_filename_component(dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${path}\" DIRECTORY)
                file(MAKE_DIRECTORY \"\${dir}\")
                file(CREATE_LINK \"\${target}\" \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${path}\" SYMBOLIC)
              endforeach()")
install(FILES systemd/smtp-oauth2-relay.service DESTINATION /lib/systemd/system)
install(FILES systemd/smtp-oauth2-relay.sysusers DESTINATION lib/sysusers.d RENAME smtp-oauth2-relay.conf)
install(FILES systemd/smtp-oauth2-relay.tmpfiles DESTINATION lib/tmpfiles.d RENAME smtp-oauth2-relay.conf)
install(FILES conf/config.example.toml DESTINATION /etc/smtp-oauth2-relay RENAME config.toml)
install(FILES README.md DESTINATION share/doc/smtp-oauth2-relay)

# Man pages generated at build time by the binary itself (relay/cli/man_page.hpp): every command's
# --help text and every key of the example config, so they cannot drift from either.
foreach(page smtp-oauth2-relay.8 smtp-oauth2-relay.toml.5)
  string(REGEX MATCH "[0-9]$" section ${page})
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz ${CMAKE_BINARY_DIR}/man/${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND $<TARGET_FILE:smtp-oauth2-relay> man ${section} ${CMAKE_SOURCE_DIR}/systemd/man/${page}.in
            > ${CMAKE_BINARY_DIR}/man/${page}
    COMMAND gzip -9n -c ${CMAKE_BINARY_DIR}/man/${page} > ${CMAKE_BINARY_DIR}/man/${page}.gz
    DEPENDS smtp-oauth2-relay ${CMAKE_SOURCE_DIR}/systemd/man/${page}.in ${CMAKE_SOURCE_DIR}/conf/config.example.toml
    VERBATIM)
  list(APPEND RELAY_MAN_PAGES ${CMAKE_BINARY_DIR}/man/${page}.gz)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz DESTINATION share/man/man${section})
endforeach()
add_custom_target(man_pages ALL DEPENDS ${RELAY_MAN_PAGES})

set(CPACK_PACKAGE_NAME smtp-oauth2-relay)
set(CPACK_PACKAGE_VENDOR "smtp-oauth2-relay")
# Debian policy 5.6.2: a name and a working address. Set it for your own builds:
# cmake -DRELAY_DEB_MAINTAINER="Jane Admin <jane@contoso.com>".
set(RELAY_DEB_MAINTAINER "smtp-oauth2-relay maintainers <smtp-oauth2-relay@lists.contoso.com>"
    CACHE STRING "Maintainer field of the .deb")
set(RELAY_DEB_REVISION 1 CACHE STRING "Debian revision of the .deb (the -N in 0.1.0-N)")
set(CPACK_PACKAGE_CONTACT "${RELAY_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${RELAY_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_RELEASE "${RELAY_DEB_REVISION}")
# The host's MTA, as msmtp-mta is: exactly one package may provide /usr/sbin/sendmail.
set(CPACK_DEBIAN_PACKAGE_PROVIDES "mail-transport-agent")
set(CPACK_DEBIAN_PACKAGE_CONFLICTS "mail-transport-agent")
set(CPACK_DEBIAN_PACKAGE_REPLACES "mail-transport-agent")
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
