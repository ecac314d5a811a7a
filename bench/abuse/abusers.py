#!/usr/bin/env python3
"""bench/abuse/abusers.py: the hostile side of bench/abuse, on loopback only.

    abusers.py PORT SECONDS SLOWLORIS FLOOD_CONNS

- SLOWLORIS connections from 127.0.0.2, each sending a request header one byte every
  second and never finishing it; a connection the server closes is opened again, so the
  pressure stays at SLOWLORIS connections for the whole run.
- FLOOD_CONNS keep-alive connections from 127.0.0.3, each sending GET /api/v1/mq/queues
  with a fresh random well-formed token as fast as answers come back.
Prints one line of JSON: slowloris reopened, flood requests and answers by status.
"""
import asyncio
import json
import random
import string
import sys

ALPHABET = string.ascii_letters + string.digits + "-_"


async def open_from(source, port):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def slowloris(port, until, stats):
    header = b"POST /api/v1/mq/publish HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await open_from("127.0.0.2", port)
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        try:
            for i in range(len(header)):
                if loop.time() >= until:
                    break
                writer.write(header[i:i + 1])
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), timeout=1.0)
                    if not data:
                        break  # closed by the server: open another
                except asyncio.TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            writer.close()
        stats["reopened"] += 1


async def flood(port, until, stats):
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await open_from("127.0.0.3", port)
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while loop.time() < until:
                token = "mq_" + "".join(random.choice(ALPHABET) for _ in range(43))
                writer.write(("GET /api/v1/mq/queues HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer %s\r\n\r\n" % token).encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                stats["status"][status] = stats["status"].get(status, 0) + 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main():
    port, seconds, n_slow, n_flood = (int(a) for a in sys.argv[1:5])
    until = asyncio.get_running_loop().time() + seconds
    stats = {"reopened": 0, "connect_failed": 0, "status": {}}
    tasks = [slowloris(port, until, stats) for _ in range(n_slow)]
    tasks += [flood(port, until, stats) for _ in range(n_flood)]
    await asyncio.gather(*tasks)
    print(json.dumps(stats))


asyncio.run(main())
