"""SEARCH, SORT and THREAD with their extensions: ESEARCH's RETURN options (RFC 4731),
SEARCHRES's saved result `$` (RFC 5182), CONTEXT=SEARCH's PARTIAL and UPDATE with
CANCELUPDATE (RFC 5267), ESORT (RFC 5267), WITHIN and SAVEDATE keys. Answers are
written as Dovecot writes them (`imap-search.c`): MIN MAX ALL PARTIAL COUNT MODSEQ, in
that order. A mixin of `session.ImapSession`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from courriel.access.imap import sort, thread
from courriel.access.imap.errors import Bad, No
from courriel.access.imap.search import Search
from courriel.access.imap.view import SearchUpdate, Selected, uid_set

if TYPE_CHECKING:
    from courriel.access.imap.parser import Command


class SearchCommands:
    selected: Selected | None
    condstore: bool
    rev2: bool

    if TYPE_CHECKING:

        @property
        def sel(self) -> Selected: ...

        def send(self, line: str | bytes) -> None: ...

    def _search(self, command: Command) -> tuple[list[tuple[int, int]], bool]:
        """(sequence number, UID) of the matches, in mailbox order, and whether the
        program had a MODSEQ key."""
        if not command.args["known"]:
            raise No(f"Unsupported charset {command.args['charset']}.", "BADCHARSET (UTF-8)")
        search = Search(self.sel)
        found = search.run(command.args["keys"])
        if search.uses_modseq:
            self.condstore = True
        return found, search.uses_modseq

    async def cmd_search(self, command: Command) -> str:
        returns = command.args["return"]
        self._check_return(command.tag, returns)
        found, modseq = self._search(command)
        self._answer(command, found, modseq, "SEARCH")
        if returns is not None and "UPDATE" in returns:
            self.sel.updates[command.tag] = SearchUpdate(
                command.args["keys"], command.uid, {uid for _, uid in found}
            )
        return "SEARCH completed."

    async def cmd_sort(self, command: Command) -> str:
        returns = command.args["return"]
        self._check_return(command.tag, returns)
        if returns is not None and "UPDATE" in returns:
            raise Bad("UPDATE is not offered for SORT.")
        found, modseq = self._search(command)
        selected = self.sel
        lookup = selected.lookup
        kept = [(seq, m) for seq, uid in found if (m := lookup(uid)) is not None]
        # Sort keys come from a message's content, which never changes: the order of a
        # set of UIDs is kept per folder, so that a webmail listing again gets it at once.
        criteria = command.args["criteria"]
        key = ("SORT", tuple(criteria), tuple(m.uid for _seq, m in kept))
        positions = cast("list[int] | None", selected.index.results.get(key))
        if positions is None:
            positions = sort.order(selected.index, [m for _seq, m in kept], criteria)
            selected.index.remember(key, positions)
        self._answer(command, [(kept[p][0], kept[p][1].uid) for p in positions], modseq, "SORT")
        return "SORT completed."

    async def cmd_thread(self, command: Command) -> str:
        found, _modseq = self._search(command)
        selected = self.sel
        algorithm = command.args["algorithm"]
        # The threads of a set of messages never change (a UID's content does not):
        # kept per folder, so that a webmail listing again gets them at once.
        key = (algorithm, tuple(uid for _seq, uid in found))
        roots = selected.index.results.get(key)
        if roots is None:
            lookup = selected.lookup
            messages = [(seq, m, uid) for seq, uid in found if (m := lookup(uid)) is not None]
            builder = thread.references if algorithm == "REFERENCES" else thread.ordered_subject
            roots = builder(selected.index, messages)
            selected.index.remember(key, roots)
        if command.uid:
            shown = int
        else:
            where = {uid: seq for seq, uid in found}
            shown = where.__getitem__
        self.send("* THREAD " + thread.render(roots, shown) if roots else "* THREAD")
        return "THREAD completed."

    async def cmd_cancelupdate(self, command: Command) -> str:
        for tag in command.args["tags"]:
            self.sel.updates.pop(tag, None)
        return "CANCELUPDATE completed."

    def _check_return(self, tag: str, returns: list[Any] | None) -> None:
        if returns is None:
            return
        names = {r if isinstance(r, str) else r[0] for r in returns}
        if "PARTIAL" in names and "ALL" in names:
            raise Bad("PARTIAL conflicts with ALL.")
        if "UPDATE" in names and tag in self.sel.updates:
            raise Bad("Duplicate search update tag.")

    def _answer(
        self, command: Command, found: list[tuple[int, int]], modseq: bool, verb: str
    ) -> None:
        """The answer of SEARCH/SORT: the classic `* SEARCH 1 2 3`, or ESEARCH with
        what RETURN asked for; the saved result for `$` when asked (SAVE)."""
        selected = self.sel
        returns = command.args["return"]
        if returns is None and self.rev2 and verb == "SEARCH":
            returns = []  # RFC 9051 6.4.4: ESEARCH always, ALL when nothing is asked
        numbers = [uid if command.uid else seq for seq, uid in found]
        if returns is None:
            handled = found
            line = " ".join([f"* {verb}", *map(str, numbers)])
            top = self._top_modseq(handled) if modseq else 0
            self.send(line + (f" (MODSEQ {top})" if top else ""))
            return
        options = {r if isinstance(r, str) else r[0] for r in returns}
        partial = next((r[1] for r in returns if not isinstance(r, str)), None)
        if not options - {"CONTEXT"}:
            options.add("ALL")  # RETURN () (or only CONTEXT) means ALL
        # the messages the answer is about (Dovecot: what SAVE and MODSEQ take)
        if options & {"ALL", "COUNT"} or not options - {"SAVE", "CONTEXT", "UPDATE"}:
            handled = found
        elif partial is not None:
            low, high = partial
            handled = found[low - 1 : high]
        else:
            handled = [found[0]] if found and "MIN" in options else []
            if found and "MAX" in options and found[-1] not in handled:
                handled.append(found[-1])
        if "SAVE" in options:
            selected.saved = [uid for _, uid in handled]
        if not options - {"SAVE"}:
            return  # only saving: no ESEARCH answer
        parts = [f'* ESEARCH (TAG "{command.tag}")']
        if command.uid:
            parts.append("UID")
        if numbers and "MIN" in options:  # the first and last found (in sort order)
            parts.append(f"MIN {numbers[0]}")
        if numbers and "MAX" in options:
            parts.append(f"MAX {numbers[-1]}")
        if numbers and "ALL" in options:
            parts.append(f"ALL {uid_set(numbers)}")
        if partial is not None:
            low, high = partial
            window = numbers[low - 1 : high]
            parts.append(f"PARTIAL ({low}:{high} {uid_set(window) if window else 'NIL'})")
        if "COUNT" in options:
            parts.append(f"COUNT {len(numbers)}")
        top = self._top_modseq(handled) if modseq else 0
        if top:
            parts.append(f"MODSEQ {top}")
        self.send(" ".join(parts))

    def _top_modseq(self, handled: list[tuple[int, int]]) -> int:
        lookup = self.sel.lookup
        return max((m.modseq for _, uid in handled if (m := lookup(uid))), default=0)

    def search_updates(self) -> None:
        """CONTEXT=SEARCH: what entered and left the results of the searches the client
        keeps updated, after the client heard of new and expunged messages."""
        selected = self.selected
        if selected is None or not selected.updates:
            return
        for tag, update in selected.updates.items():
            found = Search(selected).run(update.keys)
            now = {uid for _, uid in found}
            gone = sorted(update.matched - now)
            added = [(seq, uid) for seq, uid in found if uid not in update.matched]
            update.matched = now
            if not gone and not added:
                continue
            parts = [f'* ESEARCH (TAG "{tag}")']
            if update.uid:
                parts.append("UID")
            if gone:
                numbers = gone if update.uid else self._positions(gone)
                if numbers:
                    parts.append(f"REMOVEFROM (0 {uid_set(numbers)})")
            if added:
                numbers = [uid if update.uid else seq for seq, uid in added]
                parts.append(f"ADDTO (0 {uid_set(numbers)})")
            if len(parts) > 1 + update.uid:
                self.send(" ".join(parts))

    def _positions(self, uids: list[int]) -> list[int]:
        view = self.sel.view
        where = {uid: position for position, uid in enumerate(view, 1)}
        return [where[uid] for uid in uids if uid in where]
