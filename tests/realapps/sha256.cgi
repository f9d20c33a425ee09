# SPDX-License-Identifier: Apache-2.0
# CGI for tests/realapps.bats (run by lighttpd's mod_cgi with /bin/sh): answers an upload with the
# sha256 and the length of the request body lighttpd read (through the shim) and passed on.
printf 'Content-Type: text/plain\r\n\r\n'
sha256sum | cut -d' ' -f1
echo "${CONTENT_LENGTH:-}"
