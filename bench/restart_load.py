#!/usr/bin/python3
# Restarts under load: a client connects to 127.0.0.1:PORT every 5 ms while RESTART (a
# shell command) runs N times, each waited for until a new server process has answered.
# Prints one JSON object: restarts, connections, failures (refused, reset, timed out),
# servers that answered, seconds. Exits 1 if a restart command fails or a new server
# does not answer within 20 s.
# usage: restart_load.py PORT N RESTART
import json, socket, subprocess, sys, threading, time
port, n, restart = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
answers, failures, stop = [], [], threading.Event()

def ask():
    c = socket.create_connection(('127.0.0.1', port), timeout=10)
    c.settimeout(10)
    data = b''
    while True:
        b = c.recv(100)
        if not b:
            break
        data += b
    c.close()
    return int(data)

def loop():
    while not stop.is_set():
        try:
            pid = ask()
            with lock:
                answers.append(pid)
        except Exception as e:
            with lock:
                failures.append(repr(e))
        time.sleep(0.005)

first = ask()
t = threading.Thread(target=loop)
t.start()
start = time.monotonic()
try:
    for i in range(n):
        with lock:
            before = set(answers) | {first}
        r = subprocess.run(restart, shell=True, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            sys.exit('restart %d failed (%d): %s' % (i, r.returncode, r.stderr))
        deadline = time.monotonic() + 20
        while True:
            with lock:
                if set(answers) - before:
                    break
            if time.monotonic() > deadline:
                sys.exit('restart %d: no answer from a new server within 20 s' % i)
            time.sleep(0.002)
finally:
    took = time.monotonic() - start
    stop.set()
    t.join()
print(json.dumps({'restarts': n, 'connections': len(answers), 'failed': len(failures),
                  'failures': failures[:5], 'servers': len(set(answers) | {first}),
                  'seconds': round(took, 3)}))
