#!/bin/sh
# Before removing the .deb or .rpm (not on upgrade): stop and disable
# the service.
set -e
case "$1" in
remove | purge | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now dotproxy.service >/dev/null 2>&1 || true
fi
