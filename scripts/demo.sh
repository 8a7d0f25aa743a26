#!/usr/bin/env bash
# The SAW demo lab, on loopback:
#
#   scripts/demo.sh          install what is missing, build, start the lab, print the ssh line
#   scripts/demo.sh stop     stop it
#   scripts/demo.sh status   show what runs
#
# The lab: the test IdP (oidc-provider, users alice / bob / carol, any password) on
# 127.0.0.1:9400 and saw-brokerd on 127.0.0.1:2222. State, logs and the audit trail live in
# .lab/ of the source tree.
#
# As root, with network namespaces available, the lab also gets the issue #3 topology
# (network namespaces stand in for hosts; addresses in 198.18.0.0/15, the RFC 2544 benchmark
# range; nothing is routed: no default route, ip_forward=0 in every namespace):
#   saw-demo-ws    workspace alice-ws: saw-guestd (dials the broker at 198.18.1.1:2222) and
#                  OpenSSH sshd on 127.0.0.1:22 with saw-authorized-keys and pam_saw
#   saw-demo-j1/j2 jump hosts (OpenSSH sshd on 198.18.2.2 / 198.18.3.2, forwarding only)
#   saw-demo-corp  the corp web service http://198.19.0.1:8080/ (reachable from j1/j2 only)
# The host end of each link (sawdemo-ws/-j1/-j2: 198.18.{1,2,3}.1/24) stays in this machine.
# For that it creates, and `stop` removes: the Unix account alice (only if it did not exist;
# the workspace sshd logs her in), /usr/local/lib/saw-demo/ (saw-authorized-keys, pam_saw.so),
# /usr/local/sbin/sshd-sawdemo (-> /usr/sbin/sshd) and /etc/pam.d/sshd-sawdemo (its PAM
# service). Without root or namespaces only the IdP and the broker run (with a warning).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
lab=$src/.lab
idp_port=${SAW_DEMO_IDP_PORT:-9400}
broker_port=${SAW_DEMO_BROKER_PORT:-2222}

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

# The netns part (issue #3).
ns_prefix=saw-demo
demo_namespaces=(ws j1 j2 corp)
ws_name=alice-ws
demo_user=alice
demo_libdir=/usr/local/lib/saw-demo
demo_sshd=/usr/local/sbin/sshd-sawdemo
demo_pam=/etc/pam.d/sshd-sawdemo

stop_lab() {
	local f pid
	for f in "$lab"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
			echo "stopped $(basename "$f" .pid) (pid $pid)"
		fi
		rm -f "$f"
	done
	stop_topology
}

# stop_topology: every process left in the demo namespaces (all started by this script), the
# namespaces (their veths go with them), the files and the account the demo created.
stop_topology() {
	local ns pids
	for ns in "${demo_namespaces[@]}"; do
		[ -e "/run/netns/$ns_prefix-$ns" ] || continue
		pids=$(ip netns pids "$ns_prefix-$ns" 2>/dev/null || true)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -TERM $pids 2>/dev/null || true
			sleep 0.5
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
		fi
		ip netns del "$ns_prefix-$ns" 2>/dev/null || true
		echo "removed namespace $ns_prefix-$ns"
	done
	# The host ends of the links go with their namespaces, but asynchronously: now.
	for ns in ws j1 j2; do
		! ip link show "sawdemo-$ns" >/dev/null 2>&1 || ip link del "sawdemo-$ns" 2>/dev/null || true
	done
	[ ! -e "$demo_libdir" ] || rm -rf "$demo_libdir"
	[ ! -L "$demo_sshd" ] || rm -f "$demo_sshd"
	[ ! -f "$demo_pam" ] || rm -f "$demo_pam"
	if [ -f "$lab/created-user-$demo_user" ]; then
		userdel -r "$demo_user" >/dev/null 2>&1 || true
		rm -f "$lab/created-user-$demo_user"
		echo "removed account $demo_user"
	fi
}

status_lab() {
	local f pid
	for f in "$lab"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			echo "$(basename "$f" .pid): running (pid $pid)"
		else
			echo "$(basename "$f" .pid): not running"
		fi
	done
	local ns
	for ns in "${demo_namespaces[@]}"; do
		[ ! -e "/run/netns/$ns_prefix-$ns" ] || echo "namespace $ns_prefix-$ns: present"
	done
}

# topology_possible: root, iproute2 with namespaces, sshd, the issue #3 binaries. Prints why not.
topology_possible() {
	local b
	if [ "$(id -u)" -ne 0 ]; then
		echo "not root"
		return 1
	fi
	command -v ip >/dev/null 2>&1 || { echo "no ip (iproute2)"; return 1; }
	[ -x /usr/sbin/sshd ] || { echo "no /usr/sbin/sshd"; return 1; }
	for b in broker/sawctl guestd/saw-guestd guestd/saw-authorized-keys guestd/pam_saw.so; do
		[ -e "build/$b" ] || { echo "build/$b was not built"; return 1; }
	done
	if ! ip netns add "$ns_prefix-probe" 2>/dev/null; then
		echo "cannot create network namespaces"
		return 1
	fi
	ip netns del "$ns_prefix-probe" 2>/dev/null || true
	return 0
}

# in_ns NS CMD...: CMD in the demo namespace NS.
in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns_prefix-$ns" "$@"
}

# bg_ns NAME NS CMD...: CMD in namespace NS in the background (own session), pid in
# .lab/NAME.pid, output in .lab/NAME.log.
bg_ns() {
	local name=$1 ns=$2
	shift 2
	setsid ip netns exec "$ns_prefix-$ns" "$@" >"$lab/$name.log" 2>&1 </dev/null &
	echo $! >"$lab/$name.pid"
}

# veth_host HOST_IF HOST_ADDR NS NS_IF NS_ADDR: a veth pair between this machine (HOST_IF)
# and the demo namespace NS (NS_IF), with their addresses.
veth_host() {
	ip link add "$1" type veth peer name "$4" netns "$ns_prefix-$3"
	ip addr add "$2" dev "$1"
	ip link set "$1" up
	in_ns "$3" ip addr add "$5" dev "$4"
	in_ns "$3" ip link set "$4" up
}

# sshd_config_for DIR LISTEN AUTHKEYS EXTRA...: a demo sshd's config and host key in DIR.
sshd_config_for() {
	local dir=$1 listen=$2 ak=$3 l
	shift 3
	mkdir -p "$dir"
	chmod 0755 "$dir"
	[ -f "$dir/ssh_host_ed25519_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C "saw-demo-$(basename "$dir")" -f "$dir/ssh_host_ed25519_key"
	{
		echo "ListenAddress $listen"
		echo "HostKey $dir/ssh_host_ed25519_key"
		echo "PidFile none"
		echo "AuthorizedKeysFile $ak"
		echo "PasswordAuthentication no"
		echo "KbdInteractiveAuthentication no"
		echo "StrictModes no"
		echo "UseDNS no"
		echo "PrintMotd no"
		echo "X11Forwarding no"
		for l in "$@"; do echo "$l"; done
	} >"$dir/sshd_config"
	/usr/sbin/sshd -t -f "$dir/sshd_config"
}

# start_topology: namespaces, links, jump hosts, the corp service (before the broker, which
# listens on 198.18.1.1 too and needs the jump hosts' keys).
start_topology() {
	local ns
	stop_topology >/dev/null
	for ns in "${demo_namespaces[@]}"; do
		ip netns add "$ns_prefix-$ns"
		in_ns "$ns" ip link set lo up
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=0
		in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
	done
	veth_host sawdemo-ws 198.18.1.1/24 ws eth0 198.18.1.2/24
	veth_host sawdemo-j1 198.18.2.1/24 j1 eth0 198.18.2.2/24
	veth_host sawdemo-j2 198.18.3.1/24 j2 eth0 198.18.3.2/24
	in_ns corp ip link add br0 type bridge
	in_ns corp ip addr add 198.19.0.1/24 dev br0
	in_ns corp ip link set br0 up
	local j
	for j in j1 j2; do
		in_ns "$j" ip link add corp0 type veth peer name "$j" netns "$ns_prefix-corp"
		in_ns "$j" ip addr add "198.19.0.1$([ "$j" = j1 ] && echo 1 || echo 2)/24" dev corp0
		in_ns "$j" ip link set corp0 up
		in_ns corp ip link set "$j" master br0
		in_ns corp ip link set "$j" up
	done

	# Jump hosts: root by key, forwarding only (ForceCommand: no shell, no commands).
	local jdir=$lab/jump
	mkdir -p "$jdir"
	chmod 0755 "$jdir"
	[ -f "$jdir/jump_key" ] || ssh-keygen -q -t ed25519 -N '' -C saw-demo-jump -f "$jdir/jump_key"
	cp "$jdir/jump_key.pub" "$jdir/authorized_keys"
	chmod 0644 "$jdir/authorized_keys"
	: >"$jdir/known_hosts"
	for j in j1 j2; do
		local addr=198.18.2.2
		[ "$j" = j1 ] || addr=198.18.3.2
		sshd_config_for "$lab/$j" "$addr:22" "$jdir/authorized_keys" "UsePAM no" \
			"PermitRootLogin prohibit-password" "AllowUsers root" "AllowTcpForwarding yes" \
			"PermitTTY no" "ForceCommand /bin/false" "ClientAliveInterval 5"
		echo "$addr $(cut -d' ' -f1,2 "$lab/$j/ssh_host_ed25519_key.pub")" >>"$jdir/known_hosts"
		bg_ns "sshd-$j" "$j" /usr/sbin/sshd -D -e -f "$lab/$j/sshd_config"
	done
	chmod 0644 "$jdir/known_hosts"

	# The corp service.
	mkdir -p "$lab/corp/www"
	echo "Hello from the corp network (served in namespace $ns_prefix-corp, reached through the SAW broker and a jump host)." \
		>"$lab/corp/www/index.html"
	bg_ns corp-http corp python3 -m http.server 8080 --bind 198.19.0.1 --directory "$lab/corp/www"
}

# start_workspace: the workspace's sshd (saw-authorized-keys + pam_saw) and saw-guestd, after
# the broker runs; registers the workspace with sawctl.
start_workspace() {
	local wdir=$lab/ws
	mkdir -p "$wdir"
	chmod 0711 "$wdir"
	if ! id "$demo_user" >/dev/null 2>&1; then
		useradd -m -s /bin/bash -c "SAW demo user" "$demo_user"
		touch "$lab/created-user-$demo_user"
	fi
	install -d -m 0755 -o root -g root "$demo_libdir"
	install -m 0755 -o root -g root build/guestd/saw-authorized-keys "$demo_libdir/"
	install -m 0644 -o root -g root build/guestd/pam_saw.so "$demo_libdir/"
	ln -sfn /usr/sbin/sshd "$demo_sshd"
	cat >"$demo_pam" <<PAM
# SAW demo workspace sshd (scripts/demo.sh; see conf/pam.d-sshd-saw)
auth     required pam_deny.so
account  required $demo_libdir/pam_saw.so socket=$wdir/guestd.sock
session  required $demo_libdir/pam_saw.so socket=$wdir/guestd.sock
PAM
	mkdir -p /run/sshd
	# OpenSSH names its PAM service after the program: run through the sshd-sawdemo link.
	sshd_config_for "$wdir" 127.0.0.1:22 none "UsePAM yes" \
		"AuthorizedKeysCommand $demo_libdir/saw-authorized-keys -s $wdir/guestd.sock %u %f %k %t" \
		"AuthorizedKeysCommandUser nobody" "AllowTcpForwarding no" "PermitTunnel no" \
		"Subsystem sftp internal-sftp"
	bg_ns sshd-ws ws "$demo_sshd" -D -e -f "$wdir/sshd_config"

	[ -f "$wdir/workspace_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C "saw-demo-$ws_name" -f "$wdir/workspace_key"
	cp "$bdir/ssh_host_ed25519_key.pub" "$wdir/broker_host_key.pub"
	if ! build/broker/sawctl -s "$bdir/admin.sock" workspace list 2>/dev/null |
		awk -v n="$ws_name" '$1 == n { f = 1 } END { exit !f }'; then
		build/broker/sawctl -s "$bdir/admin.sock" workspace add "$ws_name" --owner "$demo_user" \
			--key "$wdir/workspace_key.pub" --profile corporate
	fi
	cat >"$wdir/guestd.conf" <<GUESTD
# SAW demo workspace (generated by scripts/demo.sh)
BrokerAddress 198.18.1.1:$broker_port
BrokerHostKey $wdir/broker_host_key.pub
WorkspaceName $ws_name
WorkspaceKey $wdir/workspace_key
LocalSSH 127.0.0.1:22
ControlSocket $wdir/guestd.sock
AuditSpool $wdir/audit.spool
AuthorizedKeysUser nobody
ProxyListen 127.0.0.1:3128
GUESTD
	bg_ns guestd ws build/guestd/saw-guestd -f "$wdir/guestd.conf" -d
	local _
	for _ in $(seq 50); do
		build/broker/sawctl -s "$bdir/admin.sock" workspace list 2>/dev/null |
			awk -v n="$ws_name" '$1 == n && $4 == "online" { f = 1 } END { exit !f }' && return 0
		sleep 0.2
	done
	echo "demo: workspace $ws_name did not come online, see $lab/guestd.log" >&2
	return 1
}

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case ${1:-start} in
stop) stop_lab; exit 0 ;;
status) status_lab; exit 0 ;;
start) ;;
*) echo "usage: scripts/demo.sh [start|stop|status]" >&2; exit 2 ;;
esac

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C build -j"$(nproc)" saw-brokerd >/dev/null
# The issue #3 pieces; missing targets (a partial tree) only cost the netns part.
make -C build -j"$(nproc)" sawctl saw-guestd saw-authorized-keys pam_saw >/dev/null 2>&1 || true

mkdir -p "$lab"
chmod 0711 "$lab"
stop_lab >/dev/null
for p in "$idp_port" "$broker_port"; do
	if port_busy "$p"; then
		echo "demo: 127.0.0.1:$p is in use by another program; stop it or set" \
			"SAW_DEMO_IDP_PORT / SAW_DEMO_BROKER_PORT" >&2
		exit 1
	fi
done

# The IdP.
setsid node tests/idp/idp.mjs --port "$idp_port" >"$lab/idp.out" 2>"$lab/idp.log" </dev/null &
echo $! >"$lab/idp.pid"
for _ in $(seq 150); do
	grep -q '^READY ' "$lab/idp.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^READY ' "$lab/idp.out" || { echo "demo: the IdP did not start, see $lab/idp.log" >&2; exit 1; }
issuer=$(sed -n 's/^READY //p' "$lab/idp.out")

# The network namespaces (issue #3), when possible.
topology=0
if why=$(topology_possible); then
	start_topology
	topology=1
else
	echo "demo: WARNING: no workspace, jump hosts or corp network in this lab ($why);" \
		"only the IdP and the broker run. Run as root on a machine with network namespaces" \
		"and a complete build for the rest." >&2
fi

# The broker: its own directory, owned by the account it drops to when started as root.
bdir=$lab/broker
mkdir -p "$bdir"
chmod 0700 "$bdir"
[ -f "$bdir/ssh_host_ed25519_key" ] ||
	ssh-keygen -q -t ed25519 -N '' -C saw-demo-broker -f "$bdir/ssh_host_ed25519_key"
cat >"$bdir/broker.conf" <<EOF
# SAW demo lab broker (generated by scripts/demo.sh)
ListenAddress 127.0.0.1:$broker_port
HostKey $bdir/ssh_host_ed25519_key
StateDatabase $bdir/broker.db
AuditLog $bdir/audit.jsonl
OIDCIssuer $issuer
OIDCClientID saw-broker
RequiredGroup saw-users
SessionMaxLifetime 8h
SessionIdleTimeout 30m
EOF
if [ "$topology" = 1 ]; then
	cat >>"$bdir/broker.conf" <<EOF
# issue #3: workspaces dial 198.18.1.1, the corp service through the jump hosts
ListenAddress 198.18.1.1:$broker_port
AdminSocket $bdir/admin.sock
JumpHost 198.18.2.2:22 root $bdir/jump_key
JumpHost 198.18.3.2:22 root $bdir/jump_key
JumpHostKnownHosts $lab/jump/known_hosts
CorpService api 198.19.0.1:8080
EOF
	cp "$lab/jump/jump_key" "$bdir/jump_key"
	chmod 0600 "$bdir/jump_key"
fi
if [ "$(id -u)" -eq 0 ]; then
	echo "User saw" >>"$bdir/broker.conf"
	chown -R saw: "$bdir"
fi
build/broker/saw-brokerd -t -f "$bdir/broker.conf"
setsid build/broker/saw-brokerd -f "$bdir/broker.conf" >"$lab/broker.log" 2>&1 </dev/null &
echo $! >"$lab/broker.pid"
for _ in $(seq 100); do port_busy "$broker_port" && break; sleep 0.1; done
port_busy "$broker_port" || { echo "demo: the broker did not start, see $lab/broker.log" >&2; exit 1; }

# A key for the demo user and the broker's host key pinned, so the ssh line works as is.
[ -f "$lab/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C alice@saw-demo -f "$lab/id_ed25519"
echo "[127.0.0.1]:$broker_port $(cut -d' ' -f1,2 "$bdir/ssh_host_ed25519_key.pub")" >"$lab/known_hosts"

if [ "$topology" = 1 ]; then
	start_workspace || topology=0
	echo "$ws_name $(cut -d' ' -f1,2 "$lab/ws/ssh_host_ed25519_key.pub")" >>"$lab/known_hosts"
	# ssh -J passes -F on to the ssh it starts for the jump: both hops read this file.
	cat >"$lab/ssh_config" <<EOF
# SAW demo lab (generated by scripts/demo.sh)
Host broker
  HostName 127.0.0.1
  Port $broker_port
Host *
  IdentityFile $lab/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $lab/known_hosts
  StrictHostKeyChecking yes
EOF
fi

cat <<EOF

SAW demo lab is up.
  IdP     $issuer   users: alice, carol (entitled), bob (not entitled); any password
  broker  127.0.0.1:$broker_port   log: .lab/broker.log   audit (OCSF): .lab/broker/audit.jsonl

Try:
  ssh -i .lab/id_ed25519 -o UserKnownHostsFile=.lab/known_hosts -p $broker_port alice@127.0.0.1

ssh shows a URL: open it in a browser, sign in as alice (any password), approve, then press
Enter. No browser on this machine? In another terminal run:
  tests/tools/saw-approve 'THE_URL' alice
Connect again within the session's life and you are in at once, without the browser.

Stop the lab: scripts/demo.sh stop
EOF
if [ "$topology" = 1 ]; then
	cat <<EOF

The workspace $ws_name (namespace $ns_prefix-ws) is online; reach it through the broker:
  ssh -F .lab/ssh_config -J alice@broker alice@$ws_name
(the same as: ssh -i .lab/id_ed25519 -o UserKnownHostsFile=.lab/known_hosts \\
   -o ProxyCommand='ssh -F .lab/ssh_config -W %h:%p alice@broker' alice@$ws_name)
Inside it, the corp service answers only through the broker and the jump hosts:
  curl -p -x http://127.0.0.1:3128 http://198.19.0.1:8080/
and not directly:  curl --max-time 3 http://198.19.0.1:8080/
Workspaces: sudo build/broker/sawctl -s .lab/broker/admin.sock workspace list
Logs: .lab/guestd.log, .lab/sshd-ws.log, .lab/sshd-j1.log, .lab/sshd-j2.log, .lab/corp-http.log
EOF
fi
