#!/usr/bin/env python3
"""Writes the seed corpora of Berth's fuzz targets into seeds/<target>/ (checked in; run again
after changing a target's input format). The netlink seeds are real datagrams captured with
capture_netlink.py (as root: unshare -n python3 capture_netlink.py seeds/netlink). The
seeds named regression-* are inputs that found a bug, kept as they were found."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(HERE, "seeds", target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# Varlink messages as clients send them (varlinkctl, sd-varlink, Berth's own clients).
MESSAGES = {
    "register": '{"method":"io.systemd.Machine.Register","parameters":{"name":"demo","class":"container","leaderProcessId":{"pid":4242,"pidfdId":77,"bootId":"0123456789abcdef0123456789abcdef"},"rootDirectory":"/var/lib/machines/demo","ifIndices":[5,7],"allocateUnit":true}}',
    "register-vm": '{"method":"io.systemd.Machine.Register","parameters":{"name":"vm1","class":"vm","leader":4243,"id":"01234567-89ab-cdef-0123-456789abcdef","vSockCid":3,"sshAddress":"vsock/3","sshPrivateKeyPath":"/root/.ssh/id","controlAddress":"/run/berth/supervise/vm1.sock"}}',
    "list-all": '{"method":"io.systemd.Machine.List","parameters":{},"more":true}',
    "list-one": '{"method":"io.systemd.Machine.List","parameters":{"name":"demo","acquireMetadata":"graceful"}}',
    "list-pid": '{"method":"io.systemd.Machine.List","parameters":{"pid":{"pid":0}}}',
    "kill-name": '{"method":"io.systemd.Machine.Kill","parameters":{"name":"demo","whom":"leader","signal":"SIGRTMIN+4"}}',
    "kill-number": '{"method":"io.systemd.Machine.Kill","parameters":{"name":"demo","signal":"9"}}',
    "unregister": '{"method":"io.systemd.Machine.Unregister","parameters":{"name":"demo"}}',
    "terminate-oneway": '{"method":"io.systemd.Machine.Terminate","parameters":{"name":"demo"},"oneway":true}',
    "mapfrom": '{"method":"io.systemd.Machine.MapFrom","parameters":{"name":"demo","uid":1000,"gid":1000}}',
    "mapto": '{"method":"io.systemd.Machine.MapTo","parameters":{"uid":132072}}',
    "open": '{"method":"io.systemd.Machine.Open","parameters":{"name":"demo","mode":"tty"}}',
    "resolvehost": '{"method":"io.berth.Registry.ResolveHost","parameters":{"name":"demo"}}',
    "watch": '{"method":"io.berth.Registry.Watch","parameters":{},"more":true}',
    "getinfo": '{"method":"org.varlink.service.GetInfo","parameters":null}',
    "description": '{"method":"org.varlink.service.GetInterfaceDescription","parameters":{"interface":"io.systemd.Machine"}}',
    "ping": '{"method":"io.systemd.service.Ping","upgrade":false}',
    "loglevel": '{"method":"io.systemd.service.SetLogLevel","parameters":{"level":7}}',
    "duplicate": '{"method":"io.systemd.Machine.List","parameters":{"name":"a","name":"b"}}',
    "out-of-range": '{"method":"io.systemd.Machine.MapTo","parameters":{"uid":1e999}}',
    "unknown-field": '{"method":"io.systemd.Machine.List","parameters":{"nope":1}}',
    "more-oneway": '{"method":"io.systemd.Machine.List","more":true,"oneway":true}',
    "not-json": '{"method":"io.systemd.Machine.List",',
}

for name, message in MESSAGES.items():
    write("envelope", name, message)

# frame: control byte (bit 0: read() like supervise, else appended like the tokio transport;
# with 0xa in the high nibble, bits 1-3 pad the first message to 16 MiB - 3 ... + 3),
# chunking seed, then the stream.
stream = "\0".join(MESSAGES[k] for k in ["register", "list-all", "getinfo", "kill-name"]) + "\0"
write("frame", "appended", b"\x00\x07" + stream.encode())
write("frame", "read", b"\x01\x2a" + stream.encode())
write("frame", "partial", b"\x01\x05" + stream.encode() + b'{"method":')
write("frame", "empty-messages", b"\x00\x01\x00\x00{}\x00\x00")
write("frame", "at-limit", b"\xa9\x03" + MESSAGES["list-all"].encode() + b"\0")  # pad 4: exactly 16 MiB
write("frame", "past-limit", b"\xaa\x03" + MESSAGES["list-all"].encode() + b"\0")  # 16 MiB + 1
write("frame", "past-limit-open", b"\xaf\x00" + MESSAGES["list-all"].encode())

# validate: socket (0 registry, 1 resolve hook, 2 userdb bridge, 3 supervise), method index
# (in IDL order, org.varlink.service last), then the bytes parameters are drawn from.
METHODS = {0: 20, 1: 4, 2: 5, 3: 14}
for served, count in METHODS.items():
    for method in range(count):
        write("validate", f"socket{served}-method{method:02}", bytes([served, method]))
write("validate", "registry-register-drawn", bytes([0, 4]) + bytes(range(7, 200, 3)))
write("validate", "userdb-user-drawn", bytes([2, 0]) + bytes(range(250, 0, -5)))

# state_file: mode 0 and a file's text, as the registry writes it (machine.rs
# state_entries) and as machined writes it; a half-written one; modes 1 and 2 draw entries
# and machines from the bytes.
REGISTRY = """# This is private data. Do not parse.
NAME=demo
UID=0
SCOPE=machine-demo.scope
CGROUP=/sys/fs/cgroup/machine.slice/berth-demo
SERVICE="systemd-nspawn \\"demo\\""
ROOT=/var/lib/machines/demo
ID=0123456789abcdef0123456789abcdef
LEADER=4242
LEADER_PIDFDID=1234
SUPERVISOR=4241
SUPERVISOR_PIDFDID=1233
CLASS=container
REALTIME=1733350000000000
MONOTONIC=123456789
NETIF="5 7"
CONTROL_ADDRESS=/run/berth/supervise/demo.sock
"""
VM = """# This is private data. Do not parse.
NAME=vm1
UID=1000
SCOPE=user@1000.service
SUBGROUP=app.slice/vm1.scope
ADOPTED_CGROUP=/user.slice/user-1000.slice/user@1000.service/app.slice/vm1.scope
LEADER=4243
LEADER_PIDFDID=1240
CLASS=vm
REALTIME=1733350000000001
MONOTONIC=123456790
VSOCK_CID=3
SSH_ADDRESS=vsock/3
SSH_PRIVATE_KEY_PATH=/root/.ssh/id
STOPPING=1
"""
MACHINED = """# This is private data. Do not parse.
NAME=test1
SCOPE=machine-test1.scope
SERVICE=systemd-nspawn
ROOT=/var/lib/machines/test1
ID=6f1c2b0e8d8a4c5e9b3f2a1d0c9e8f7a
LEADER=1234
CLASS=container
REALTIME=1700000000000000
MONOTONIC=42000000
NETIF=" 5 7"
"""
write("state_file", "registry-container", b"\x00" + REGISTRY.encode())
write("state_file", "registry-vm", b"\x00" + VM.encode())
write("state_file", "machined", b"\x00" + MACHINED.encode())
write("state_file", "half-written", b"\x00" + REGISTRY[: len(REGISTRY) // 2].encode())
write("state_file", "unterminated-quote", b"\x00NAME=demo\nCLASS=vm\nLEADER=2\nSERVICE=\"a b\n")
write("state_file", "comments", b"\x00; comment\n# another\n  KEY = value  \nA='single $quoted'\nB=esc\\\naped\n")
write("state_file", "entries", b"\x01" + bytes(range(0, 120)))
write("state_file", "machine", b"\x02" + bytes(range(255, 60, -1)))

# nss_layout: flags (bit 0: gethostbyname4_r), slack (i16 LE), scope ID (u32 LE), family
# asked, name length, name, then (family, length, bytes) per address.
def layout(flags, slack, scope, asked, name, addresses):
    data = bytes([flags]) + struct.pack("<hI", slack, scope) + bytes([asked, len(name)]) + name
    for family, address in addresses:
        data += bytes([family, len(address)]) + address
    return data

V4 = bytes([198, 51, 100, 7])
V6 = bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [7])
LL = bytes([0xFE, 0x80] + [0] * 13 + [1])
write("nss_layout", "four-two", layout(1, 0, 5, 0, b"demo", [(2, V4), (10, V6)]))
write("nss_layout", "four-small", layout(1, -1, 0, 0, b"demo", [(2, V4), (10, LL)]))
write("nss_layout", "four-none", layout(1, 64, 0, 0, b"demo", []))
write("nss_layout", "four-bad-family", layout(1, 8, 0, 0, b"demo", [(1, V4)]))
write("nss_layout", "three-inet", layout(0, 0, 0, 2, b"demo", [(2, V4), (10, V6), (2, bytes([198, 51, 100, 9]))]))
write("nss_layout", "three-inet6", layout(0, 3, 0, 10, b"my-box.example", [(10, V6), (10, LL)]))
write("nss_layout", "three-small", layout(0, -1, 0, 2, b"demo", [(2, V4)]))
write("nss_layout", "three-short-address", layout(0, 16, 0, 10, b"demo", [(10, V4)]))

# userdb: a script of registry changes and lookups.
write("userdb", "one-container", """+ foo u=0:131072:65536 g=0:131072:65536
? user id=132072
? user name=vu-foo-1000
? group name=vg-foo-5
? user id=132072 name=vu-foo-1000
? user id=132072 name=vu-foo-1001
""")
write("userdb", "many", """+ foo u=0:131072:65536 g=0:131072:65536
+ my-box u=0:196608:65536 g=0:196608:65536
+ host-ids u=0:1000:65536
+ plain
+ vm1 vm u=0:262144:65536
+ pending u=
? user name=vu-my-box-0
? user name=vu-host-ids-64536
? user id=1000
? group id=196609
- foo
? user id=132072
""")
write("userdb", "split-maps", """+ c u=0:200000:1,1:300000:65535 g=0:0:4000000,100000:200000:10
? user name=vu-c-0
? user name=vu-c-5
? group id=200001
+ c u=0:196608:65536
? user id=300004
""")
write("userdb", "long-names", """+ abcdefghijklmnopqrstuvwxyz u=0:65536:65536
+ a-1 u=0:131072:65536
+ a u=0:131072:100
? user id=65537
? user name=vu-a-1-5
? user id=131077
""")

# dns: address length, address, then the name resolved asks about.
write("dns", "a-demo", bytes([4]) + V4 + b"demo")
write("dns", "aaaa-demo", bytes([16]) + V6 + b"demo.")
write("dns", "a-below", bytes([4]) + V4 + b"www.demo")
write("dns", "a-dotted", bytes([4]) + V4 + b"my-box.example")
write("dns", "long-label", bytes([4]) + V4 + b"x" * 64)
write("dns", "label-63", bytes([16]) + V6 + b"y" * 63 + b".z")
write("dns", "no-address", bytes([0]) + b"demo")
write("dns", "empty-label", bytes([4]) + V4 + b"a..b")
