"""An anonymous sign-in flood, as its own process (so that its CPU is not the service's event loop's).

``python -m tests.support.flood <base url> <seconds> <local address>``: 40 concurrent sign-ins with
made-up usernames, each sent again as soon as it is answered, from ``<local address>`` (another loopback
address than the pilot's, so the service sees two clients). Prints ``flooding`` once the first answer is
in, then at the end one JSON line: answers by status code.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import httpx

WORKERS = 40


async def main(url: str, seconds: float, local_address: str) -> None:
    codes: Counter[int] = Counter()
    end = time.monotonic() + seconds
    transport = httpx.AsyncHTTPTransport(
        local_address=local_address, limits=httpx.Limits(max_connections=WORKERS)
    )
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as client:

        async def worker(w: int) -> None:
            n = 0
            while time.monotonic() < end:
                n += 1
                body = {"username": f"ghost-{w}-{n}", "password": "not-a-password"}
                try:
                    r = await client.post("/api/v1/auth/login", json=body)
                    codes[r.status_code] += 1
                except httpx.HTTPError as e:
                    codes[-1] += 1
                    print(f"error: {type(e).__name__}", file=sys.stderr)
                if sum(codes.values()) == 1:
                    print("flooding", flush=True)

        await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    print(json.dumps({str(k): v for k, v in sorted(codes.items())}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
