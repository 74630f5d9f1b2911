"""Rows of one order id grouped into one purchase (its lines the items), in bounded memory.

Why a window and not "adjacent only" or a sort: exports list an order's lines together (Shopify: one row
per line item, the order-level columns filled on the first), but some interleave orders a little; a full
sort would reorder the events, and the replay applies them in file order. So an order stays open until
`order_window` rows were read after its first row, then it is closed and emitted. Memory: the rows of at most
`order_window` rows, plus an 8-byte fingerprint per closed order (to recognise a late row of a closed order,
rejected with the reason; a 64-bit collision would wrongly reject one order in ~10^12 pairs). Events come
out in the order of each order's first row whatever the window, so the result does not depend on it.

An order listed twice in one file is rejected the second time (its id is closed). Refund rows (negative
amounts) are counted by content so equal ones get distinct ids (`refund_row`'s `copy`): the counts of the
last `order_window` distinct refund rows are kept, as equal return lines lie close together. What an
order's rows become: streams.replay.order_events.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from streams.replay.order_events import CsvOptions, Emitted, Line, Rejected, order_events, refund_row


@dataclass
class _Open:
    order_id: str
    first: int  # index of its first row among the data rows
    lines: list[Line] = field(default_factory=list)


class OrderGroups:
    """Feed lines in file order with `add`, then `finish`; both return what became ready, in order."""

    def __init__(self, options: CsvOptions) -> None:
        self.options = options
        self.grouped = "order_id" in options.columns
        self.index = 0
        self.queue: deque[_Open | list[Emitted | Rejected]] = deque()
        self.open: dict[str, _Open] = {}
        self.closed: set[int] = set()
        self.refunds: OrderedDict[int, int] = OrderedDict()  # refund row fingerprint -> copies seen

    def add(self, line: Line) -> list[Emitted | Rejected]:
        self.index += 1
        out = self._drain(self.index - self.options.order_window)
        is_refund = line.error is None and line.amount is not None and line.amount < 0
        if not self.grouped or not line.order_id or is_refund:
            ready = (
                refund_row(line, self.options, self._copy(line))
                if is_refund
                else order_events(None, [line], self.options)
            )
            self.queue.append(ready)
        elif line.order_id in self.open:
            self.open[line.order_id].lines.append(line)
        elif _fingerprint(line.order_id) in self.closed:
            reason = (
                f"order {line.order_id!r} was already closed: its rows lie more than"
                f" {self.options.order_window} rows apart or it is listed twice (raise --order-window)"
            )
            out.append(Rejected(line.number, reason, line.row))
        else:
            group = _Open(line.order_id, self.index, [line])
            self.open[line.order_id] = group
            self.queue.append(group)
        return out + self._drain(self.index - self.options.order_window)

    def _copy(self, line: Line) -> int:
        """How many refund rows equal to `line` (customer, time, amount, currency, order) came before, + 1."""
        what = "\x1f".join(map(str, (line.customer, line.at, line.amount, line.currency, line.order_id)))
        key = _fingerprint(what)
        copy = self.refunds.pop(key, 0) + 1
        self.refunds[key] = copy
        if len(self.refunds) > self.options.order_window:
            self.refunds.popitem(last=False)
        return copy

    def finish(self) -> list[Emitted | Rejected]:
        return self._drain(None)

    def _drain(self, before: int | None) -> list[Emitted | Rejected]:
        """Emit the queue's head while it is ready: outputs, and open orders whose first row is at or
        before `before` (all of them when None)."""
        out: list[Emitted | Rejected] = []
        while self.queue:
            head = self.queue[0]
            if isinstance(head, _Open):
                if before is not None and head.first > before:
                    break
                del self.open[head.order_id]
                self.closed.add(_fingerprint(head.order_id))
                out += order_events(head.order_id, head.lines, self.options)
            else:
                out += head
            self.queue.popleft()
        return out


def _fingerprint(order_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(order_id.encode(), digest_size=8).digest(), "big")
