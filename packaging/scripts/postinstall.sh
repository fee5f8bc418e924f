#!/bin/sh
# After installing or upgrading the .deb or .rpm: make systemd see the
# unit. dotproxy is not started here: port 53 is often taken (by
# systemd-resolved's stub or dnsmasq), so the administrator enables it
# once the configuration fits: systemctl enable --now dotproxy
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade: the running proxy takes the new binary.
	if systemctl is-active --quiet dotproxy.service; then
		systemctl restart dotproxy.service || true
	fi
fi
