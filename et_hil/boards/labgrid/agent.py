"""The place agent: one small process per board user that holds labgrid places
for it, through labgrid's client API.

Why a process of its own: labgrid keeps a place acquired until someone releases
it; a client that dies without releasing (SIGKILL, OOM, a CI runner torn down)
leaves the place acquired for good, and the lab's queue stalls behind it. The
agent outlives its parent by design (its own session, no inherited signals):
when the parent's end of the pipe closes, for whatever reason, the agent
cancels its reservation and releases its place, then exits. It also keeps
labgrid's asyncio and gRPC out of pytest's processes.

Protocol: JSON lines. The parent writes requests on the agent's stdin, the
agent answers each with one line on stdout; diagnostics go to stderr.

``{"op": "acquire", "filters": {"pool": "ci"}, "timeout_s": 600, "console": null}``
    reserve a place matching every filter (labgrid tags; ``name`` is the place's
    name), wait in labgrid's reservation queue for it, acquire it, and wait for
    its serial console to be served. Answers ``place``, ``exporter``, ``port``
    (a device path or ``rfc2217://`` URL), ``reservation`` (the token),
    ``owner`` and ``waited_s``; or ``error`` naming who holds each candidate.
``{"op": "release"}``
    release the place, cancelling its reservation first (so the next waiter is
    allocated at once).
``{"op": "status", "filters": {...}}``
    each matching place with who acquired it and who reserved it (``et-hil units``).

    python -m et_hil.boards.labgrid.agent --coordinator 127.0.0.1:20408
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

POLL_S = 0.5  # reservation polls; each one also keeps the reservation alive
FIRST_POLL_S = 0.01  # a free place is allocated at once: look again soon, then back off
CONSOLE_WAIT_S = 15.0  # ser2net is started by the exporter when the place is acquired
RPC_TIMEOUT_S = 10.0
RECONNECT_S = 60.0  # a coordinator restarting (or failing over) comes back within this
SERIAL_CLASSES = ("NetworkSerialPort", "RawSerialPort", "USBSerialPort")


class LabError(Exception):
    """A request the lab cannot meet; the message is the whole story."""


def describe_error(exc: BaseException) -> str:
    """One line for a gRPC or labgrid error."""
    details = getattr(exc, "details", None)
    if callable(details):
        with contextlib.suppress(Exception):
            return str(details())
    return str(exc) or type(exc).__name__


class Agent:
    """Holds at most one place at a time for its parent.

    Args:
        session: a started labgrid ``ClientSession``.
        address: the coordinator's address, for messages.
        gone: set when the parent is gone (stdin closed) or SIGTERM came.
    """

    def __init__(self, session: Any, address: str, gone: asyncio.Event) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

        self.session = session
        self.address = address
        self.gone = gone
        self.pb = pb
        self.owner = f"{session.gethostname()}/{session.getuser()}"
        self.token: str | None = None
        self.place: str | None = None

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one request."""
        op = request.get("op")
        if op == "acquire":
            return await self.acquire(
                dict(request.get("filters") or {}),
                float(request.get("timeout_s", 600.0)),
                request.get("console"),
            )
        if op == "release":
            await self.release()
            return {"ok": True}
        if op == "status":
            return {"ok": True, "places": await self.status(dict(request.get("filters") or {}))}
        raise LabError(f"unknown request {op!r}")

    # ------------------------------------------------------------ acquiring

    async def acquire(
        self, filters: dict[str, str], timeout_s: float, console: str | None
    ) -> dict[str, Any]:
        """Reserve, wait, acquire; see the module docstring."""
        if self.place is not None:
            raise LabError(f"place {self.place} is still held by this agent")
        if self.session.stopping.is_set():
            await self._reconnect()
        pb = self.pb
        started = time.monotonic()
        self._check_candidates(filters)
        request = pb.CreateReservationRequest(
            filters={"main": pb.Reservation.Filter(filter=filters)}, prio=0.0
        )
        response = await self._rpc(self.session.stub.CreateReservation(request))
        self.token = response.reservation.token
        place = await self._wait_for_allocation(filters, timeout_s, started)
        try:
            await self._rpc(self.session.stub.AcquirePlace(pb.AcquirePlaceRequest(placename=place)))
        except LabError as exc:
            await self._cancel_reservation()
            raise LabError(f"acquiring place {place} failed: {exc}") from None
        self.place = place
        await self.session.sync_with_coordinator()
        try:
            port, exporter = await self._console(place, console)
        except LabError:
            await self.release()
            raise
        return {
            "ok": True,
            "place": place,
            "exporter": exporter,
            "port": port,
            "reservation": self.token,
            "owner": self.owner,
            "waited_s": round(time.monotonic() - started, 6),
        }

    async def _reconnect(self) -> None:
        """A new session after the coordinator went away (a restart forgets
        sessions; acquiring needs one)."""
        from labgrid.remote.client import ClientSession
        from labgrid.util.proxy import proxymanager

        with contextlib.suppress(Exception):
            await self.session.stop()
            await self.session.close()
        address = proxymanager.get_grpc_address(self.address, default_port=20408)
        deadline = time.monotonic() + RECONNECT_S
        while True:
            session = ClientSession(address, asyncio.get_running_loop())
            try:
                await asyncio.wait_for(session.start(), RPC_TIMEOUT_S)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await session.close()
                if time.monotonic() >= deadline or self.gone.is_set():
                    raise LabError(
                        f"lost coordinator {self.address} and could not reconnect within "
                        f"{RECONNECT_S:g} s: {describe_error(exc)}"
                    ) from None
                await asyncio.sleep(0.5)
                continue
            print(f"reconnected to coordinator {self.address}", file=sys.stderr)
            self.session = session
            return

    def _matching(self, filters: Mapping[str, str]) -> list[Any]:
        """The places a reservation with ``filters`` could get (labgrid's
        scheduler matches tags, and ``name`` as the place's name)."""
        found = []
        for name, place in sorted(self.session.places.items()):
            tags = {**place.tags, "name": name}
            if all(tags.get(k) == v for k, v in filters.items()):
                found.append(place)
        return found

    def _check_candidates(self, filters: Mapping[str, str]) -> None:
        if self._matching(filters):
            return
        known = ", ".join(
            f"{name} ({', '.join(f'{k}={v}' for k, v in sorted(p.tags.items())) or 'no tags'})"
            for name, p in sorted(self.session.places.items())
        )
        raise LabError(
            f"no place on coordinator {self.address} matches {_filter_text(filters)}; "
            f"places: {known or 'none'}"
        )

    async def _wait_for_allocation(
        self, filters: Mapping[str, str], timeout_s: float, started: float
    ) -> str:
        from labgrid.remote.common import Reservation

        pb = self.pb
        assert self.token is not None
        pause = FIRST_POLL_S
        while True:
            response = await self._rpc(
                self.session.stub.PollReservation(pb.PollReservationRequest(token=self.token))
            )
            reservation = Reservation.from_pb2(response.reservation)
            state = reservation.state.name
            if state in ("allocated", "acquired"):
                allocated = reservation.allocations.get("main")
                if allocated:
                    return str(allocated[0])
            if state in ("expired", "invalid"):
                self.token = None
                raise LabError(f"the reservation for {_filter_text(filters)} became {state}")
            if time.monotonic() - started >= timeout_s:
                holders = await self._holders(filters)
                await self._cancel_reservation()
                raise LabError(
                    f"no place matching {_filter_text(filters)} came free within "
                    f"{timeout_s:g} s: {holders}"
                )
            if self.gone.is_set():
                await self._cancel_reservation()
                raise LabError("the agent's user went away while waiting")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.gone.wait(), pause)
            pause = min(POLL_S, pause * 2)

    async def status(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        """Each place matching ``filters``: who holds it, who reserved it."""
        if self.session.stopping.is_set():
            await self._reconnect()
        owners = await self._reservation_owners()
        return [
            {
                "place": place.name,
                "acquired": place.acquired,
                "reserved_by": owners.get(place.reservation) if place.reservation else None,
            }
            for place in self._matching(filters)
        ]

    async def _reservation_owners(self) -> dict[str, str]:
        with contextlib.suppress(LabError):
            response = await self._rpc(
                self.session.stub.GetReservations(self.pb.GetReservationsRequest())
            )
            return {r.token: r.owner for r in response.reservations}
        return {}

    async def _holders(self, filters: Mapping[str, str]) -> str:
        """Who holds each candidate place, and who waits, as one line."""
        owners = await self._reservation_owners()
        parts = []
        for place in self._matching(filters):
            if place.acquired:
                parts.append(f"{place.name} acquired by {place.acquired}")
            elif place.reservation:
                who = owners.get(place.reservation, "someone")
                parts.append(f"{place.name} reserved by {who} ({place.reservation})")
            else:
                parts.append(f"{place.name} free (an earlier reservation is served first)")
        waiting = sorted(owner for token, owner in owners.items() if token != self.token and token)
        text = "; ".join(parts)
        if waiting:
            text += f"; reservations queued by {', '.join(waiting)}"
        return text

    async def _console(self, place_name: str, wanted: str | None) -> tuple[str, str]:
        """The place's serial console as a pyserial port, and its exporter host."""
        deadline = time.monotonic() + CONSOLE_WAIT_S
        while True:
            place = self.session.places.get(place_name)
            found = []
            if place is not None:
                try:
                    resources = self.session.get_target_resources(place)
                except Exception as exc:  # an exporter that went away
                    raise LabError(f"place {place_name}: {describe_error(exc)}") from None
                found = [
                    (name, entry)
                    for (name, cls), entry in sorted(resources.items())
                    if cls in SERIAL_CLASSES and (wanted is None or name == wanted)
                ]
            if len(found) > 1:
                names = ", ".join(name for name, _ in found)
                raise LabError(
                    f"place {place_name} has several serial ports ({names}): "
                    "name one with [serial.labgrid] console"
                )
            if found:
                _name, entry = found[0]
                args = entry.args
                if entry.cls == "NetworkSerialPort":
                    if entry.avail and args.get("port"):
                        host = args.get("host") or ""
                        # ign_set_control: ser2net on a pty cannot set modem lines
                        return f"rfc2217://{host}:{args['port']}?ign_set_control", host
                elif entry.avail and args.get("port"):
                    return str(args["port"]), self.session.gethostname()
            if time.monotonic() >= deadline:
                what = f"serial port '{wanted}'" if wanted else "serial port"
                raise LabError(
                    f"place {place_name}: no {what} was served within {CONSOLE_WAIT_S:g} s "
                    "of acquiring it (is its exporter running, and ser2net installed there?)"
                )
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------ releasing

    async def release(self) -> None:
        """Cancel the reservation, then release the place; both best effort
        (a coordinator that restarted has forgotten them already)."""
        await self._cancel_reservation()
        place, self.place = self.place, None
        if place is None:
            return
        request = self.pb.ReleasePlaceRequest(placename=place, fromuser=self.owner)
        with contextlib.suppress(LabError):
            await self._rpc(self.session.stub.ReleasePlace(request))

    async def _cancel_reservation(self) -> None:
        token, self.token = self.token, None
        if token is None:
            return
        with contextlib.suppress(LabError):
            await self._rpc(
                self.session.stub.CancelReservation(self.pb.CancelReservationRequest(token=token))
            )

    async def _rpc(self, call: Any) -> Any:
        import grpc

        try:
            return await asyncio.wait_for(call, RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise LabError(describe_error(exc)) from None
        except TimeoutError:
            raise LabError(
                f"coordinator {self.address} did not answer within {RPC_TIMEOUT_S:g} s"
            ) from None


def _filter_text(filters: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "any place"


_replies: Any = None  # the parent's pipe; fd 1 is moved to stderr (see main)


def _reply(data: Mapping[str, Any]) -> bool:
    """Answer the parent; False when it is gone (its end of the pipe closed)."""
    try:
        _replies.write(json.dumps(data) + "\n")
        _replies.flush()
    except (BrokenPipeError, ValueError):
        return False
    return True


def _read_requests(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes], gone: asyncio.Event
) -> None:
    """Stdin lines into ``queue``; at EOF the parent is gone, which also ends a
    wait for a place in progress."""
    for line in iter(sys.stdin.buffer.readline, b""):
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(gone.set)
    loop.call_soon_threadsafe(queue.put_nowait, b"")


async def _handle_stream(agent: Agent, queue: asyncio.Queue[bytes]) -> None:
    while True:
        line_task = asyncio.ensure_future(queue.get())
        gone_task = asyncio.ensure_future(agent.gone.wait())
        done, _ = await asyncio.wait({line_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
        if line_task not in done:
            line_task.cancel()
            return
        gone_task.cancel()
        line = line_task.result()
        if not line:
            return
        try:
            request = json.loads(line)
            # A second request may come while this one waits: there is none in
            # this protocol (the parent waits for each answer).
            reply = await agent.handle(request)
        except LabError as exc:
            reply = {"ok": False, "error": str(exc)}
        except (ValueError, TypeError) as exc:
            reply = {"ok": False, "error": f"bad request {line[:200]!r}: {exc}"}
        except Exception as exc:  # a labgrid surprise: answer, release, keep serving
            traceback.print_exc()
            await agent.release()
            reply = {"ok": False, "error": f"labgrid client error: {describe_error(exc)}"}
        if not _reply(reply):
            return  # nobody to hold the place for: released on the way out


def main(argv: list[str] | None = None) -> int:
    """Run the agent (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m et_hil.boards.labgrid.agent")
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of labgrid-coordinator")
    args = parser.parse_args(argv)
    # Replies get the original stdout to themselves; anything else printed
    # (labgrid prints) goes to stderr, the agent's log, and cannot garble them.
    global _replies
    _replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # Ctrl-C at a terminal goes to the whole foreground group: the agent must
    # outlive its parent's unwinding to release for it, so it ignores SIGINT
    # and ends when the parent's pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from labgrid.remote.client import start_session

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gone = asyncio.Event()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop.add_signal_handler(signal.SIGTERM, gone.set)
    try:
        session = start_session(args.coordinator, loop=loop)
    except Exception as exc:
        _reply({"ok": False, "error": f"cannot reach coordinator {args.coordinator}: {exc}"})
        return 1
    agent = Agent(session, args.coordinator, gone)
    threading.Thread(target=_read_requests, args=(loop, queue, gone), daemon=True).start()
    _reply({"ok": True, "owner": agent.owner, "pid": os.getpid()})
    try:
        loop.run_until_complete(_handle_stream(agent, queue))
    finally:
        loop.run_until_complete(agent.release())
        with contextlib.suppress(Exception):
            loop.run_until_complete(session.stop())
            loop.run_until_complete(session.close())
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the stdin reader thread may still block in a read, and
    # interpreter shutdown would wait on (or crash over) its buffer lock.
    os._exit(code)
