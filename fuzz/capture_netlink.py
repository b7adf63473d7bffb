#!/usr/bin/env python3
"""Captures real route netlink datagrams as seeds of the `netlink` fuzz target (as root, in a
network namespace of its own: `unshare -n python3 capture_netlink.py seeds/netlink`).

It sets up addresses of every kind the registry sees (IPv4, point-to-point with IFA_LOCAL,
IPv6 global and deprecated, link-local, loopback), dumps them as the registry does
(RTM_GETADDR, sequence number 1) and records the change notifications of adding and removing
addresses. Each datagram is written with the target's mode byte 0 (raw) in front."""

import os
import socket
import struct
import subprocess
import sys
import time

RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_GETADDR = 22
NLMSG_DONE = 3
NLM_F_REQUEST_DUMP = 0x301


def sh(command):
    subprocess.run(command, shell=True, check=True)


def save(directory, name, datagram):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(b"\0" + datagram)


def main(directory):
    os.makedirs(directory, exist_ok=True)
    sh("ip link set lo up")
    sh("ip link add veth0 type veth peer name veth1")
    sh("ip addr add 198.51.100.7/24 dev veth0")
    sh("ip addr add 10.0.0.1 peer 10.0.0.2/32 dev veth1")
    sh("ip -6 addr add 2001:db8::7/64 dev veth0 nodad")
    sh("ip -6 addr add 2001:db8::9/64 dev veth0 nodad preferred_lft 0")
    sh("ip link set veth0 up; ip link set veth1 up")
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    sock.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
    request = struct.pack("=IHHII", 16 + 8, RTM_GETADDR, NLM_F_REQUEST_DUMP, 1, 0)
    sock.send(request + struct.pack("=BBBBI", 0, 0, 0, 0, 0))
    count, done = 0, False
    while not done:
        datagram = sock.recv(65536)
        offset = 0
        while offset + 16 <= len(datagram):
            length, kind, _, sequence, _ = struct.unpack_from("=IHHII", datagram, offset)
            done |= kind == NLMSG_DONE and sequence == 1
            offset += (length + 3) & ~3
        save(directory, f"dump-{count}", datagram)
        count += 1
    sh("ip addr add 203.0.113.5/24 dev veth1")
    sh("ip -6 addr add 2001:db8:1::5/64 dev veth1")
    sh("ip addr del 203.0.113.5/24 dev veth1")
    time.sleep(0.5)
    sock.setblocking(False)
    count = 0
    while True:
        try:
            datagram = sock.recv(65536)
        except BlockingIOError:
            break
        save(directory, f"notify-{count}", datagram)
        count += 1


if __name__ == "__main__":
    main(sys.argv[1])
