#!/bin/sh
# Before removing the .ipk: stop dotproxy and take it out of the boot.
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/dotproxy stop 2>/dev/null
/etc/init.d/dotproxy disable 2>/dev/null
exit 0
