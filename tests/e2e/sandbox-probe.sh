#!/bin/bash
# Runs INSIDE a brokered login's sandbox (tests/e2e/sandbox.sh): prints "name=value" lines
# about what the sandbox allows. Arguments: SECRET_FILE ROOT_NS_PORT BROKER_ADDR BROKER_PORT
secret=$1 port=$2 baddr=$3 bport=$4
try() { if "$@" >/dev/null 2>&1; then echo ok; else echo denied; fi; }
echo "uid=$(id -u)"
echo "user=$(id -un)"
echo "home_write=$(try touch "$HOME/.sbx-probe")"
rm -f "$HOME/.sbx-probe"
echo "tmp_write=$(try touch /tmp/sbx-probe)"
echo "etc_write=$(try touch /etc/sbx-probe-$$)"
echo "usr_write=$(try touch /usr/local/sbx-probe-$$)"
echo "var_write=$(try touch /var/lib/sbx-probe-$$)"
echo "bashrc_write=$(try sh -c 'echo "# x" >>"$HOME/.bashrc"')"
echo "secret_read=$(try cat "$secret")"
echo "rootns_connect=$(try timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port")"
echo "broker_connect=$(try timeout 3 bash -c "exec 3<>/dev/tcp/$baddr/$bport")"
echo "proxy_listening=$(try timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128')"
echo "unshare_user=$(try unshare -U true)"
echo "unshare_userr=$(try unshare -r true)"
echo "proc_pids=$(ls /proc | grep -c '^[0-9][0-9]*$')"
echo "pid1=$(tr '\0' ' ' </proc/1/cmdline | cut -d' ' -f1)"
echo "sshd_visible=$(try pgrep -x sshd)"
echo "netdevs=$(ls /sys/class/net 2>/dev/null | tr '\n' ,)"
echo "ifaces=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | tr '\n' ,)"
echo "run_empty=$(if [ -z "$(ls -A /run 2>/dev/null)" ]; then echo yes; else echo no; fi)"
echo "http_proxy=$HTTP_PROXY"
echo "saw_session=${SAW_SESSION:+set}"
grep -E '^(NoNewPrivs|Seccomp|CapBnd|CapEff):' /proc/self/status | tr -d '\t ' | sed 's/:/=/'
/usr/bin/python3 - <<'PY'
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def res(name, rc):
    e = ctypes.get_errno()
    print("%s=%s" % (name, "ok" if rc == 0 else errno.errorcode.get(e, str(e))))
res("ptrace_traceme", libc.ptrace(0, 0, None, None))
res("mount_tmpfs", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
res("umount_proc", libc.umount2(b"/proc", 2))
res("unshare_newuser", libc.unshare(0x10000000))
res("unshare_newns", libc.unshare(0x00020000))
libc.syscall.restype = ctypes.c_long
res("keyctl", 0 if libc.syscall(250, 0, 0, 0, 0, 0) >= 0 else -1)
res("bpf", 0 if libc.syscall(321, 0, 0, 0) >= 0 else -1)
res("io_uring_setup", 0 if libc.syscall(425, 1, ctypes.create_string_buffer(120)) >= 0 else -1)
res("userfaultfd", 0 if libc.syscall(323, 0) >= 0 else -1)
for name, fam, typ, proto in (("sock_packet", 17, socket.SOCK_RAW, 0),
                              ("sock_raw", socket.AF_INET, socket.SOCK_RAW, 1),
                              ("sock_nl_audit", 16, socket.SOCK_RAW, 9),
                              ("sock_nl_route", 16, socket.SOCK_RAW, 0),
                              ("sock_tcp", socket.AF_INET, socket.SOCK_STREAM, 0)):
    try:
        socket.socket(fam, typ, proto).close()
        print(name + "=ok")
    except OSError as e:
        print(name + "=" + errno.errorcode.get(e.errno, str(e.errno)))
try:
    fd = os.memfd_create("sbx")
    os.close(fd)
    print("memfd=ok")
except OSError as e:
    print("memfd=" + errno.errorcode.get(e.errno, str(e.errno)))
PY
