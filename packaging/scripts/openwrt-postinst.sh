#!/bin/sh
# After installing the .ipk: start dotproxy at boot. It is not started
# now: point it and dnsmasq at each other first (README.md, "OpenWrt").
# IPKG_INSTROOT is set when the package goes into a firmware image.
[ -n "$IPKG_INSTROOT" ] || /etc/init.d/dotproxy enable
exit 0
