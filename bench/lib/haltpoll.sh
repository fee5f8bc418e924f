# shellcheck shell=bash
# The guest's halt polling, for bench/run -H and bench/ab -H. A KVM guest
# with the haltpoll cpuidle driver polls an idle CPU for up to
# guest_halt_poll_ns before it halts it; waking a halted virtual CPU is
# dear (here a write that woke one took 28-30 µs, against 11 µs), and a
# server pays it each time an event finds its core idle. This machine's
# kernel command line turns polling off (haltpoll.guest_halt_poll_ns=0);
# Linux's default is 200000. The poll runs in the idle task, so it is
# charged to no server's CPU time.

HALT_POLL_PARAM=/sys/module/haltpoll/parameters/guest_halt_poll_ns
HALT_POLL_SAVED=

# halt_poll_state: the driver and the setting, for a report's header.
halt_poll_state() {
	local driver
	driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)
	if [[ -r $HALT_POLL_PARAM ]]; then
		echo "cpuidle $driver, guest_halt_poll_ns=$(cat "$HALT_POLL_PARAM")"
	else
		echo "cpuidle $driver, no guest halt polling"
	fi
}

# set_halt_poll NS: poll an idle CPU for up to NS nanoseconds before
# halting it, until restore_halt_poll. Fails on a machine without the
# haltpoll driver.
set_halt_poll() {
	if [[ ! $1 =~ ^[0-9]+$ ]]; then
		echo "-H $1: want nanoseconds, a whole number" >&2
		return 1
	fi
	if [[ ! -w $HALT_POLL_PARAM ]]; then
		echo "-H: $HALT_POLL_PARAM is not writable here: no haltpoll cpuidle driver, or not root" >&2
		return 1
	fi
	[[ -n $HALT_POLL_SAVED ]] || HALT_POLL_SAVED=$(cat "$HALT_POLL_PARAM")
	echo "$1" >"$HALT_POLL_PARAM"
}

# restore_halt_poll: the setting as it was before set_halt_poll.
restore_halt_poll() {
	[[ -z $HALT_POLL_SAVED ]] || echo "$HALT_POLL_SAVED" >"$HALT_POLL_PARAM"
}
