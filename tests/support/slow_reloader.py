#!/usr/bin/python3
# READY=1 at once; on each SIGHUP its own RELOADING=1, argv[1] seconds of work, then
# READY=1 with STATUS=reloaded N (it never reports a failure itself).
import os, signal, socket, sys, time
delay = float(sys.argv[1])
addr = os.environ['NOTIFY_SOCKET']
if addr.startswith('@'): addr = '\0' + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def notify(m): s.sendto(m.encode(), addr)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
notify('READY=1\nSTATUS=serving')
n = 0
while True:
    signal.sigwait({signal.SIGHUP})
    n += 1
    notify('RELOADING=1')
    print('reload %d: working for %s s' % (n, delay), flush=True)
    time.sleep(delay)
    notify('READY=1\nSTATUS=reloaded %d' % n)
