#!/bin/sh
# Plain-text status of the connectivity partition; served by
# /www/cgi-bin/status and runnable at the console as septum-status.
echo "hostname: $(hostname)"
echo "uptime: $(uptime)"
echo "cpus online: $(nproc) (cpu list $(cat /sys/devices/system/cpu/online))"
echo "memory: $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
echo "kernel: $(uname -r) $(uname -v)"
echo "cmdline: $(cat /proc/cmdline)"
mlog=/proc/device-tree/chosen/septum,measurement-log
if [ -r "$mlog" ]; then
    # Header: magic, format, entry count (u16 at 10), running digest at 16.
    n=$(od -An -v -tu2 -j10 -N2 "$mlog" | tr -d ' ')
    echo "measured boot: $n entries, running digest $(od -An -v -tx1 -j16 -N32 "$mlog" | tr -d ' \n')"
fi
echo
# The therapy, live: the RTOS's record on the read-only telemetry channel.
echo "pump (from the RTOS, telemetry channel):"
septum-telemetry --text 2>&1 | sed 's/^/  /'
echo
echo "devices (/proc/iomem, top level):"
grep -v '^ ' /proc/iomem | sed 's/^/  /'
echo
echo "interrupts (/proc/interrupts):"
sed 's/^/  /' /proc/interrupts
echo
echo "network:"
ip -4 -o addr show 2>/dev/null | awk '{ print "  " $2, $4 }'
ip -4 route show 2>/dev/null | sed 's/^/  route /'
echo
echo "septum-linux status ok"
