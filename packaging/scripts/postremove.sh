#!/bin/sh
# After removing the .deb or .rpm: forget the unit.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
