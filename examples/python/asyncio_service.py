"""An asyncio service with the embedded services: a tiny HTTP server that counts its requests
with DogStatsD, flushes every few seconds without blocking the event loop, and stops with a final
flush on SIGTERM or SIGINT.

start_async / flush_async / stop_async run the blocking calls on a worker thread; the status
callback is called on the event loop. Run: python examples/python/asyncio_service.py [seconds]
then `curl http://127.0.0.1:8080/`. Configured by the usual DD_* variables.
"""

import asyncio
import signal
import socket
import sys

from datadog_serverless import ServerlessServices, ServicesConfig, ServiceStatus


def on_status(status: ServiceStatus) -> None:
    if status.type == "ready":
        print(f"{status.service} ready on port {status.port}", flush=True)
    elif status.type == "error":
        print(f"datadog-serverless: {status.message}", file=sys.stderr, flush=True)


async def main(run_for: float | None) -> None:
    handle = await ServerlessServices(ServicesConfig.from_env()).start_async(on_status)
    # A DogStatsD client is one UDP datagram per metric: a non-blocking send is enough.
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.setblocking(False)
    statsd.connect(("127.0.0.1", handle.ports.dogstatsd))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        path = request.split(b" ")[1].decode() if request.count(b" ") >= 2 else "/"
        statsd.send(f"http.requests:1|c|#path:{path}".encode())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 8080 if run_for is None else 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if run_for is not None:
        loop.call_later(run_for, stop.set)

    async def flush_every(seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await handle.flush_async(timeout=5)

    flusher = asyncio.create_task(flush_every(5.0))
    async with server:
        await stop.wait()
    flusher.cancel()
    await handle.stop_async()  # drain, final flush, join
    statsd.close()
    print(f"stopped: {handle.stats().dsd_metric_lines} metric lines", flush=True)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else None))
