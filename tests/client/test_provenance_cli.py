"""`prtrace download` writes the bundle the manifest names; `prtrace verify` checks it
offline with the public key only, and says exactly what fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from prtrace.adapters.signing import Ed25519FileSigner
from prtrace.storage_keys import artifact_key, manifest_envelope_key, manifest_key
from prtrace_cli.main import app
from prtrace_client.provenance import chunk_name, download_bundle
from tests.provenance_support import SignedTrace, signed_trace

runner = CliRunner()


class StoreClient:
    """The client calls download_bundle makes, answered from the pipeline's stores."""

    def __init__(self, trace: SignedTrace) -> None:
        self.trace = trace
        self.calls: list[str] = []

    def download_result(self, trace_id: str, result: str) -> bytes:
        self.calls.append(result)
        t = self.trace
        keys = {
            "manifest": manifest_key(t.tenant, trace_id),
            "attestation": manifest_envelope_key(t.tenant, trace_id),
            "document": t.assembled.document_key,
            "qa-report": t.assembled.qa_report_key,
            "judge-result": t.assembled.judge_result_key,
        }
        return t.object(keys[result])

    def download_chunk(self, trace_id: str, seq: int) -> bytes:
        self.calls.append(f"chunk {seq}")
        return self.trace.object(
            self.trace.traces.chunks[(self.trace.tenant, trace_id, seq)].body_key
        )

    def download_artifact(self, trace_id: str, sha256: str) -> bytes:
        self.calls.append("artifact")
        return self.trace.object(artifact_key(self.trace.tenant, trace_id, sha256))


@pytest.fixture
def signer(tmp_path: Path) -> Ed25519FileSigner:
    return Ed25519FileSigner.generate(tmp_path / "signing.pem")


@pytest.fixture
def downloaded(tmp_path: Path, signer: Ed25519FileSigner) -> tuple[Path, Path]:
    trace = signed_trace(tmp_path, signer)
    client = StoreClient(trace)
    done = download_bundle(client, trace.trace_id, tmp_path / "bundle")  # type: ignore[arg-type]
    assert (done.chunks, done.artifacts) == (2, len(client.calls) - 7)
    assert client.calls[:5] == ["manifest", "attestation", "document", "qa-report", "judge-result"]
    keys = tmp_path / "keys.json"
    keys.write_bytes(orjson.dumps({"keys": [signer.public_jwk()]}))
    return done.path, keys


def test_download_refuses_a_directory_that_is_not_empty(tmp_path: Path, signer: Any) -> None:
    trace = signed_trace(tmp_path, signer)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        download_bundle(StoreClient(trace), trace.trace_id, tmp_path / "full")  # type: ignore[arg-type]
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_verify_succeeds_with_only_the_public_key(downloaded: tuple[Path, Path]) -> None:
    bundle, keys = downloaded
    result = runner.invoke(app, ["verify", str(bundle), "--key", str(keys)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"verified: {bundle}")
    assert "FAIL" not in result.output


def test_verify_names_the_changed_byte_s_chunk(downloaded: tuple[Path, Path]) -> None:
    bundle, keys = downloaded
    path = bundle / chunk_name(0)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x20
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(bundle), "--key", str(keys), "--json"])
    assert result.exit_code == 1
    report = orjson.loads(result.output)
    assert report["ok"] is False
    assert len(report["failed"]) == 1
    assert report["failed"][0].startswith("chunks/000000.json: SHA-256 ")
    assert "(chunk 0, events 0..6): the chunk was changed" in report["failed"][0]


def test_verify_with_the_chain_key_recomputes_the_chain(
    downloaded: tuple[Path, Path], tmp_path: Path
) -> None:
    import base64

    from tests.assemble_support import KEY_RING

    bundle, keys = downloaded
    ring = tmp_path / "ring.json"
    ring.write_bytes(orjson.dumps({"current": KEY_RING.current_id, "keys": {
        k: base64.b64encode(v).decode() for k, v in KEY_RING.keys.items()}}))  # fmt: skip
    result = runner.invoke(
        app, ["verify", str(bundle), "--key", str(keys), "--chain-key", str(ring)]
    )
    assert result.exit_code == 0, result.output
    assert "ok    chain: recomputed head" in result.output


def test_verify_errors_on_unreadable_keys(downloaded: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = downloaded
    bad = tmp_path / "bad.json"
    bad.write_text("nope")
    result = runner.invoke(app, ["verify", str(bundle), "--key", str(bad)])
    assert result.exit_code == 2
    assert "neither JSON (JWKS or JWK) nor PEM nor DER" in result.output
