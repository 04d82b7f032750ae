"""A DNS-SD peer that lanchat did not write: Python's zeroconf, for the discovery tests.

  zeroconf-peer.py browse                        prints "added NAME k=v ..." and "removed NAME" as they happen
  zeroconf-peer.py publish NAME ADDRESS PORT k=v ...   publishes NAME._lanchat._tcp.local. until stdin closes

Both run until stdin closes (or they are killed); the tests run them inside network namespaces they made.
"""

import socket
import sys

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

TYPE = "_lanchat._tcp.local."


def say(line):
    print(line, flush=True)


def browse():
    zc = Zeroconf(ip_version=IPVersion.V4Only)

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            info = zeroconf.get_service_info(service_type, name, timeout=3000)
            if info is None:
                say(f"added {name} (unresolved)")
                return
            txt = " ".join(
                f"{k.decode()}={(v or b'').decode()}" for k, v in sorted(info.properties.items())
            )
            addresses = ",".join(info.parsed_addresses())
            say(f"added {name} {addresses} {info.port} {txt}")
        elif state_change is ServiceStateChange.Removed:
            say(f"removed {name}")

    ServiceBrowser(zc, TYPE, handlers=[on_change])
    say("browsing")
    sys.stdin.read()
    zc.close()


def publish(name, address, port, pairs):
    zc = Zeroconf(ip_version=IPVersion.V4Only, interfaces=[address])
    properties = dict(pair.split("=", 1) for pair in pairs)
    info = ServiceInfo(
        TYPE,
        f"{name}.{TYPE}",
        addresses=[socket.inet_aton(address)],
        port=int(port),
        properties=properties,
        server=f"zc-{port}.local.",
    )
    zc.register_service(info)
    say("published")
    sys.stdin.read()
    zc.unregister_service(info)
    zc.close()


if __name__ == "__main__":
    if sys.argv[1] == "browse":
        browse()
    else:
        publish(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
