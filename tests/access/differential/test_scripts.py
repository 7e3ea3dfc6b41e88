"""Every script of `scripts/` played against Courriel and against a private Dovecot 2.3
on copies of the same Maildir: the answers must be the same once normalised (see
`runner`). The transcripts of both servers go to test-artifacts/differential/ for
reading when a script fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.access.conftest import Access
from tests.access.differential import runner
from tests.fixtures.dovecot import Dovecot

SCRIPTS = sorted((runner.HERE / "scripts").glob("*.imap")) + sorted(
    (runner.HERE / "scripts").glob("*.pop3")
)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "differential"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_same_answers_as_dovecot(
    path: Path, access: Access, dovecot: Dovecot, tmp_path: Path
) -> None:
    script = runner.load(path)
    seed = tmp_path / "seed" / "Maildir"
    runner.build_seed(script, seed)
    runner.copy_seed(seed, access.maildir)
    user = dovecot.add_user(seed)
    if script.protocol == "imap":
        values = runner.seed_values(seed)
        ours = runner.play_imap(script, access.ports["imap"], access.login, access.password, values)
        theirs = runner.play_imap(script, dovecot.imap_port, user.name, user.password, values)
    else:
        ours = runner.play_pop3(script, access.ports["pop3"], access.login, access.password)
        theirs = runner.play_pop3(script, dovecot.pop3_port, user.name, user.password)
    seeded = runner.seeded_validities(seed)
    mine = runner.normalise(ours, script.ordered, seeded)
    reference = runner.normalise(theirs, script.ordered, seeded)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, transcript in (("courriel", mine), ("dovecot", reference)):
        (ARTIFACTS / f"{path.name}.{name}.txt").write_text(runner.transcript_text(transcript))
    for name, raw in (("courriel", ours), ("dovecot", theirs)):  # bytes as received
        (ARTIFACTS / f"{path.name}.{name}.raw").write_bytes(
            b"".join(b"C: %s\r\n%s" % (c.encode(), b"".join(lines)) for c, lines in raw)
        )
    report = runner.differences(mine, reference, script.deviations)
    for _replay in range(3 if script.protocol == "imap" else 0):
        # Dovecot itself sometimes answered `BINARY[1.1] {0}` for a part it sends whole
        # in other runs (ext_binary.imap, loaded machine): a difference counts only if
        # Dovecot gives the same answers again, on fresh copies.
        if not report:
            break
        again = dovecot.add_user(seed)
        replay = runner.play_imap(script, dovecot.imap_port, again.name, again.password, values)
        if runner.normalise(replay, script.ordered, seeded) == reference:
            break
        report = runner.differences(
            mine, runner.normalise(replay, script.ordered, seeded), script.deviations
        )
    assert not report, f"{path.name}: answers differ from Dovecot's\n{report}"
